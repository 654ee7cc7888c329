"""Issuing and checking API keys. The secret is shown once and stored only as a SHA-256 hash.

A key reads `rr_<id>_<secret>`: the id finds the row, the hash of the whole key proves it.
SHA-256 (not a slow password hash) is enough because the secret is 256 random bits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import api_keys
from app.db.database import Database
from app.db.tables import ApiKey

PREFIX = "rr_"
ID_LENGTH = 12


class Scope(StrEnum):
    route = "route"
    act = "act"
    read = "read"


@dataclass(frozen=True)
class Caller:
    """The authenticated API key behind a request."""

    key_id: str
    name: str
    scopes: frozenset[Scope]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def issue(session: AsyncSession, name: str, scopes: set[Scope]) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full key, which is never seen again."""
    key_id = secrets.token_hex(ID_LENGTH // 2)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=key_id,
        name=name,
        scopes=" ".join(sorted(scopes)),
        secret_hash=_digest(key),
        created_at=datetime.now(UTC),
        revoked_at=None,
    )
    await api_keys.add(session, row)
    return row, key


async def authenticate(session: AsyncSession, presented: str) -> Caller | None:
    """The caller behind a presented key, or None for a malformed, unknown or revoked key."""
    if not presented.startswith(PREFIX) or len(presented) > 200:
        return None
    key_id = presented[len(PREFIX) : len(PREFIX) + ID_LENGTH]
    row = await api_keys.get(session, key_id)
    # Compare even when the row is missing, so timing does not tell which ids exist.
    expected = row.secret_hash if row is not None else _digest("")
    if not hmac.compare_digest(_digest(presented), expected) or row is None or row.revoked_at is not None:
        return None
    return Caller(key_id=row.id, name=row.name, scopes=parse_scopes(row.scopes))


def parse_scopes(stored: str) -> frozenset[Scope]:
    return frozenset(Scope(s) for s in stored.split() if s in Scope.__members__)


class Authenticator:
    """Checks presented keys, remembering the good ones for `ttl` seconds.

    Without it every request pays a database round trip (a session, a SELECT, a rollback) before it
    does any work. The price is that a revoked key keeps working for at most `ttl` seconds in each
    process that saw it recently. Unknown and revoked keys are never remembered: they are asked
    about every time, so a new key works at once. Entries are keyed by the key's hash, never the key.
    """

    MAX_ENTRIES = 4096  # far more keys than a seller has; a full cache is simply emptied

    def __init__(
        self,
        database: Database,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._ttl = ttl
        self._clock = clock
        self._verified: dict[str, tuple[Caller, float]] = {}

    async def authenticate(self, presented: str) -> Caller | None:
        digest = _digest(presented)
        remembered = self._verified.get(digest)
        now = self._clock()
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        async with self._database.reading() as session:
            caller = await authenticate(session, presented)
        if caller is None:
            self._verified.pop(digest, None)
        elif self._ttl > 0:
            if len(self._verified) >= self.MAX_ENTRIES:
                self._verified.clear()
            self._verified[digest] = (caller, now + self._ttl)
        return caller
