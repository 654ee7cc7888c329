"""`Idempotency-Key`: replay, mismatch, concurrency, failure and expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.tables import Decision as DecisionRow
from app.db.tables import IdempotencyRecord
from app.domain import Order
from app.errors import UpstreamUnavailable
from app.runtime import Runtime
from app.services.api_keys import Scope
from tests.conftest import MakeKey

BODY = {"order_ref": "113-4567890-1234567", "reason": "damaged", "as_of": "2026-12-03T15:00:00Z"}


@pytest.fixture
async def headers(make_key: MakeKey) -> dict[str, str]:
    return await make_key(Scope.route)


async def decision_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(DecisionRow)) or 0)


def post(client: httpx.AsyncClient, headers: dict[str, str], key: str, body: dict[str, Any] = BODY) -> Any:
    return client.post("/v1/returns/route", json=body, headers={**headers, "Idempotency-Key": key})


@pytest.fixture
def gate(runtime: Runtime) -> AsyncIterator[tuple[asyncio.Event, asyncio.Event]]:
    """Hold order lookups until released, to keep a request in flight."""
    source = runtime.connectors.source("amazon_us")
    original = source.resolve_order
    entered, release = asyncio.Event(), asyncio.Event()

    async def held(order_ref: str) -> Order:
        entered.set()
        await release.wait()
        return await original(order_ref)

    source.resolve_order = held  # type: ignore[method-assign]
    yield entered, release
    source.resolve_order = original  # type: ignore[method-assign]


async def test_the_same_key_and_body_replays_the_first_answer(
    client: httpx.AsyncClient, headers: dict[str, str], sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await post(client, headers, "key-1")
    second = await post(client, headers, "key-1", {**BODY})

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await decision_count(sessions) == 1


async def test_key_order_and_whitespace_do_not_make_a_different_body(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    first = await post(client, headers, "key-json")
    reordered = dict(reversed(list(BODY.items())))
    second = await post(client, headers, "key-json", reordered)
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.json()["decision_id"] == first.json()["decision_id"]


async def test_the_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, headers: dict[str, str], sessions: async_sessionmaker[AsyncSession]
) -> None:
    await post(client, headers, "key-2")
    response = await post(client, headers, "key-2", {**BODY, "reason": "defective"})

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_conflict"
    assert await decision_count(sessions) == 1


async def test_keys_belong_to_their_api_key(
    client: httpx.AsyncClient, headers: dict[str, str], make_key: MakeKey
) -> None:
    other = await make_key(Scope.route)
    first = await post(client, headers, "shared-name")
    second = await post(client, other, "shared-name", {**BODY, "reason": "defective"})
    assert second.status_code == 201
    assert second.json()["decision_id"] != first.json()["decision_id"]


async def test_a_duplicate_while_the_first_runs_is_409_then_replays(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    gate: tuple[asyncio.Event, asyncio.Event],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    entered, release = gate
    first = asyncio.create_task(post(client, headers, "key-3"))
    await asyncio.wait_for(entered.wait(), 5)

    duplicates = await asyncio.gather(*(post(client, headers, "key-3") for _ in range(5)))
    assert {response.status_code for response in duplicates} == {409}
    assert duplicates[0].json()["code"] == "idempotency_in_flight"
    assert duplicates[0].headers["retry-after"] == "1"

    release.set()
    answered = await first
    assert answered.status_code == 201
    replay = await post(client, headers, "key-3")
    assert replay.json() == answered.json()
    assert await decision_count(sessions) == 1


async def test_many_concurrent_first_requests_store_one_decision(
    client: httpx.AsyncClient, headers: dict[str, str], sessions: async_sessionmaker[AsyncSession]
) -> None:
    responses = await asyncio.gather(*(post(client, headers, "key-race") for _ in range(20)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    assert len({r.json()["decision_id"] for r in responses if r.status_code == 201}) == 1
    assert await decision_count(sessions) == 1


async def test_a_failed_request_frees_its_key(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    runtime: Runtime,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    source = runtime.connectors.source("amazon_us")
    original = source.resolve_order

    async def unavailable(order_ref: str) -> Order:
        raise UpstreamUnavailable("Amazon is down", headers={"Retry-After": "3"})

    source.resolve_order = unavailable  # type: ignore[method-assign]
    try:
        failed = await post(client, headers, "key-4")
    finally:
        source.resolve_order = original  # type: ignore[method-assign]
    assert failed.status_code == 503
    assert failed.json()["code"] == "upstream_unavailable"
    assert failed.headers["retry-after"] == "3"

    retried = await post(client, headers, "key-4")
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert await decision_count(sessions) == 1


async def test_an_expired_key_runs_anew(
    client: httpx.AsyncClient, headers: dict[str, str], sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await post(client, headers, "key-5")
    async with sessions.begin() as session:
        await session.execute(
            update(IdempotencyRecord).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    second = await post(client, headers, "key-5", {**BODY, "reason": "defective"})
    assert second.status_code == 201
    assert second.json()["decision_id"] != first.json()["decision_id"]


async def test_a_claim_whose_request_died_can_be_taken_over(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    runtime: Runtime,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    key_id = headers["Authorization"].removeprefix("Bearer rr_")[:12]
    from app.services.idempotency import fingerprint

    # A claim left behind by a process that died mid-request, two minutes ago.
    past = datetime.now(UTC) - timedelta(minutes=3)
    async with sessions.begin() as session:
        session.add(
            IdempotencyRecord(
                api_key_id=key_id,
                key="key-6",
                fingerprint=fingerprint("POST", "/v1/returns/route", BODY),
                created_at=past,
                expires_at=past + timedelta(hours=24),
                locked_until=past + timedelta(minutes=2),
                response_status=None,
                response_body=None,
            )
        )
    response = await post(client, headers, "key-6")
    assert response.status_code == 201
    assert await decision_count(sessions) == 1


async def test_records_are_kept_at_least_24_hours(
    client: httpx.AsyncClient, headers: dict[str, str], sessions: async_sessionmaker[AsyncSession]
) -> None:
    await post(client, headers, "key-7")
    async with sessions() as session:
        record = (await session.scalars(select(IdempotencyRecord))).one()
    assert record.expires_at - record.created_at >= timedelta(hours=24)


@pytest.mark.parametrize("key", [b"", b"x" * 256, b"tab\there", "naïve".encode()])
async def test_malformed_keys_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str], key: bytes
) -> None:
    response = await client.post("/v1/returns/route", json=BODY, headers={**headers, "Idempotency-Key": key})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
