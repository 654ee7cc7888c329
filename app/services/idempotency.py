"""`Idempotency-Key` on POSTs: the first answer is kept and replayed; a different body is refused.

A request claims its key in a short transaction of its own, so a concurrent duplicate sees the claim
and gets 409 at once. The answer is saved in the same transaction as the work it answers for; a
request that fails releases its claim, so the client can retry with the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import idempotency as records
from app.db.database import Database
from app.db.decisions import Completes
from app.errors import IdempotencyConflict, IdempotencyInFlight

# How long a claim protects a running request; a request that died longer ago than this is resumable.
CLAIM_TIMEOUT = timedelta(minutes=2)


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


@dataclass
class Claim:
    """The right to run a request under an Idempotency-Key, or the answer to replay."""

    api_key_id: str | None
    key: str | None
    replay: Replay | None = None
    completed: bool = field(default=False)

    def record(self, status: int) -> Completes | None:
        """The record that the work's answer completes, written with the work; None without a key.

        Set `completed` once that write has committed.
        """
        if self.key is None or self.api_key_id is None:
            return None
        return Completes(self.api_key_id, self.key, status)

    async def complete(self, session: AsyncSession, status: int, body: dict[str, Any]) -> None:
        """Save the answer in the caller's transaction, beside the work it answers for."""
        if self.key is not None and self.api_key_id is not None:
            await records.complete(session, self.api_key_id, self.key, status, body)
        self.completed = True


class Idempotency:
    def __init__(self, database: Database, ttl: timedelta) -> None:
        self._database = database
        self._ttl = ttl

    @asynccontextmanager
    async def claim(self, api_key_id: str | None, key: str | None, fingerprint: str) -> AsyncIterator[Claim]:
        """Claim `key` of the API key `api_key_id` for one request; without a key the request simply runs."""
        if key is None or api_key_id is None:
            yield Claim(api_key_id, None)
            return
        replay = await self._claim(api_key_id, key, fingerprint)
        claim = Claim(api_key_id, key, replay=replay)
        try:
            yield claim
        finally:
            if replay is None and not claim.completed:
                async with self._database.transaction() as session:
                    await records.release(session, api_key_id, key)

    async def _claim(self, api_key_id: str, key: str, fingerprint: str) -> Replay | None:
        for _ in range(3):
            now = datetime.now(UTC)
            terms = dict(now=now, expires_at=now + self._ttl, locked_until=now + CLAIM_TIMEOUT)
            async with self._database.transaction() as session:
                if await records.insert_if_absent(session, api_key_id, key, fingerprint, **terms):
                    return None
                if await records.take_over(session, api_key_id, key, fingerprint, **terms):
                    return None
                record = await records.get(session, api_key_id, key)
            if record is not None:
                break
            # Released between our insert and our read (its request failed): the key is free, try again.
        else:
            raise IdempotencyInFlight(
                "Requests with this Idempotency-Key keep starting and failing; retry shortly.",
                headers={"Retry-After": "1"},
            )
        if record.fingerprint != fingerprint:
            raise IdempotencyConflict(
                "This Idempotency-Key was used with a different request; use a new key for a new request."
            )
        if record.response_status is None or record.response_body is None:
            raise IdempotencyInFlight(
                "A request with this Idempotency-Key is still running; retry when it has finished.",
                headers={"Retry-After": "1"},
            )
        return Replay(record.response_status, record.response_body)

    async def complete(self, claim: Claim, status: int, body: dict[str, Any]) -> None:
        """Save the answer on its own, for work that committed its effects as it went."""
        async with self._database.transaction() as session:
            await claim.complete(session, status, body)

    async def purge_expired(self) -> int:
        async with self._database.transaction() as session:
            return await records.purge_expired(session, datetime.now(UTC))
