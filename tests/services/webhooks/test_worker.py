"""The worker over a real database: each event's effect happens once, whatever is redelivered,
reordered, interrupted or run side by side."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connectors.retry import RetryPolicy
from app.db import webhook_events
from app.db.database import Database
from app.db.tables import Decision as DecisionRow
from app.db.tables import WebhookEvent
from app.errors import UpstreamUnavailable
from app.runtime import Runtime
from app.services.api_keys import Scope
from app.services.webhooks.handlers import Apply, Handler
from app.services.webhooks.worker import LEASE, Worker
from tests.conftest import MakeKey, Metrics
from tests.webhook_builders import MITTENS_LINE, TOQUE_LINE, delivery, return_request_payload


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, span: timedelta) -> None:
        self.now += span


async def receive(client: httpx.AsyncClient, payload: dict[str, Any], **options: Any) -> str:
    body, headers = delivery(payload, **options)
    response = await client.post("/webhooks/shopify", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return headers["X-Shopify-Webhook-Id"]


async def drain(worker: Worker) -> int:
    processed = 0
    while await worker.process_next():
        processed += 1
        assert processed < 1000
    return processed


async def event(database: Database, webhook_id: str) -> WebhookEvent:
    async with database.reading() as session:
        row = await webhook_events.get(session, webhook_id)
    assert row is not None
    return row


async def all_decisions(database: Database) -> list[DecisionRow]:
    async with database.reading() as session:
        return list((await session.scalars(select(DecisionRow))).all())


async def test_a_return_request_becomes_a_decision_caused_by_the_webhook(
    client: httpx.AsyncClient, runtime: Runtime, sessions: async_sessionmaker[AsyncSession], make_key: MakeKey
) -> None:
    webhook_id = await receive(client, return_request_payload(), triggered_at="2026-11-20T15:00:00Z")

    assert await drain(Worker(runtime.database, runtime.handlers)) == 1

    [row] = await all_decisions(runtime.database)
    assert (row.webhook_event_id, row.api_key_id, row.ticket_id) == (webhook_id, None, None)
    processed = await event(runtime.database, webhook_id)
    assert (processed.status, processed.outcome) == ("processed", f"decision {row.id}")
    listed = await client.get("/v1/decisions", headers=await make_key(Scope.read))
    [decision] = listed.json()["items"]
    assert decision["decision_id"] == str(row.id)
    assert (decision["channel"], decision["classification"]) == ("shopify_ca", "retention_refund")
    assert decision["ticket_id"] is None
    assert decision["reason"] == "size_or_fit"
    assert decision["as_of"] == "2026-11-20T15:00:00Z"  # when the customer asked, not when processed
    assert decision["queue"]["sla_due_at"] == "2026-11-22T15:00:00Z"
    assert decision["policy"]["returned_value"] == {"amount": "39.00", "currency": "CAD"}
    assert row.request["items"] == [{"sku": "TOQ-MER-GRY", "quantity": 1}]


async def test_several_lines_take_the_sellers_fault_reason_and_their_skus(
    client: httpx.AsyncClient, runtime: Runtime, sessions: async_sessionmaker[AsyncSession]
) -> None:
    lines = ((TOQUE_LINE, 1, "unwanted"), (MITTENS_LINE, 1, "defective"))
    await receive(client, return_request_payload(lines=lines))
    await drain(Worker(runtime.database, runtime.handlers))
    [row] = await all_decisions(runtime.database)
    assert row.reason == "defective"
    assert row.request["items"] == [
        {"sku": "TOQ-MER-GRY", "quantity": 1},
        {"sku": "MIT-SHP-M", "quantity": 1},
    ]
    assert row.answer["policy"]["returned_value"] == {"amount": "84.00", "currency": "CAD"}


async def test_the_same_event_delivered_five_times_makes_one_decision(
    client: httpx.AsyncClient, runtime: Runtime, sessions: async_sessionmaker[AsyncSession]
) -> None:
    worker = Worker(runtime.database, runtime.handlers)
    for _ in range(5):
        await receive(client, return_request_payload(), webhook_id="wh-five")
        await drain(worker)
    assert len(await all_decisions(runtime.database)) == 1
    assert (await event(runtime.database, "wh-five")).attempts == 1


async def test_a_return_announced_under_two_webhook_ids_makes_one_decision(
    client: httpx.AsyncClient, runtime: Runtime, sessions: async_sessionmaker[AsyncSession]
) -> None:
    announced = {await receive(client, return_request_payload(return_id=42)) for _ in range(2)}
    await drain(Worker(runtime.database, runtime.handlers))
    [row] = await all_decisions(runtime.database)
    # Both happened at the same moment: either may be processed first; the other finds it decided.
    assert row.webhook_event_id in announced
    [other] = announced - {row.webhook_event_id}
    assert (
        await event(runtime.database, other)
    ).outcome == f"already decided by webhook {row.webhook_event_id}"


async def test_a_worker_stopped_between_claiming_and_finishing_loses_nothing(
    client: httpx.AsyncClient, runtime: Runtime, sessions: async_sessionmaker[AsyncSession]
) -> None:
    webhook_id = await receive(client, return_request_payload())
    clock = Clock()
    # Worker A claims the event, then stops (killed) before finishing it.
    async with sessions.begin() as session:
        claimed = await webhook_events.claim_next(session, clock(), clock() + LEASE, "token-of-a")
    assert claimed is not None

    worker_b = Worker(runtime.database, runtime.handlers, clock=clock)
    assert not await worker_b.process_next()  # the claim still holds
    clock.advance(LEASE + timedelta(seconds=1))
    assert await worker_b.process_next()  # the claim lapsed: B takes the event over

    # A comes back to life and finishes what it had claimed: its claim is gone, it writes nothing.
    await Worker(runtime.database, runtime.handlers, clock=clock).process(claimed, "token-of-a")

    assert len(await all_decisions(runtime.database)) == 1
    taken_over = await event(runtime.database, webhook_id)
    assert (taken_over.status, taken_over.attempts) == ("processed", 2)


async def test_two_workers_on_one_queue_process_each_event_once(
    client: httpx.AsyncClient, runtime: Runtime, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = [await receive(client, return_request_payload(return_id=100 + n)) for n in range(12)]

    done = await asyncio.gather(
        drain(Worker(runtime.database, runtime.handlers)), drain(Worker(runtime.database, runtime.handlers))
    )

    assert sum(done) == len(ids)
    rows = await all_decisions(runtime.database)
    assert sorted(row.webhook_event_id or "" for row in rows) == sorted(ids)
    for webhook_id in ids:
        finished = await event(runtime.database, webhook_id)
        assert (finished.status, finished.attempts) == ("processed", 1)


def recording(seen: list[str]) -> Handler:
    async def prepare(event: WebhookEvent, now: datetime) -> Apply:
        async def apply(session: AsyncSession) -> str:
            seen.append(event.topic)
            return event.topic

        return apply

    return Handler(prepare, skip_if_stale=True)


async def test_an_older_change_arriving_late_does_not_undo_a_newer_one(
    client: httpx.AsyncClient, runtime: Runtime, sessions: async_sessionmaker[AsyncSession]
) -> None:
    seen: list[str] = []
    handlers = {"returns/approve": recording(seen), "returns/decline": recording(seen)}
    worker = Worker(runtime.database, handlers)
    the_return = {"id": 9001, "admin_graphql_api_id": "gid://shopify/Return/9001"}
    # The payload's own time wins over the trigger header: the decline happened last.
    declined = await receive(
        client,
        {**the_return, "status": "declined", "updated_at": "2026-11-21T12:00:00-05:00"},
        topic="returns/decline",
        triggered_at="2026-11-21T10:00:00Z",
    )
    await drain(worker)
    approved = await receive(
        client,
        {**the_return, "status": "open", "updated_at": "2026-11-21T11:00:00-05:00"},
        topic="returns/approve",
        triggered_at="2026-11-21T18:00:00Z",
    )
    await drain(worker)

    assert seen == ["returns/decline"]
    assert (await event(runtime.database, declined)).status == "processed"
    assert (await event(runtime.database, approved)).status == "superseded"


async def test_events_waiting_together_are_processed_in_the_order_they_happened(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    seen: list[str] = []
    handlers = {"returns/approve": recording(seen), "returns/close": recording(seen)}
    the_return = {"id": 9002, "admin_graphql_api_id": "gid://shopify/Return/9002"}
    await receive(client, the_return, topic="returns/close", triggered_at="2026-11-21T12:00:00Z")
    await receive(client, the_return, topic="returns/approve", triggered_at="2026-11-21T11:00:00Z")
    await drain(Worker(runtime.database, handlers))
    assert seen == ["returns/approve", "returns/close"]


async def test_a_failing_event_is_retried_with_backoff_then_parked(
    client: httpx.AsyncClient, runtime: Runtime, sessions: async_sessionmaker[AsyncSession], make_key: MakeKey
) -> None:
    async def unavailable(event: WebhookEvent, now: datetime) -> Apply:
        raise UpstreamUnavailable("Shopify answered 503")

    webhook_id = await receive(client, return_request_payload())
    clock = Clock()
    backoff = RetryPolicy(attempts=3, base_delay=10.0, max_delay=60.0)
    worker = Worker(runtime.database, {"returns/request": Handler(unavailable)}, backoff=backoff, clock=clock)

    assert await worker.process_next()
    waiting = await event(runtime.database, webhook_id)
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    assert waiting.last_error == "UpstreamUnavailable: Shopify answered 503"
    assert clock() + timedelta(seconds=5) <= waiting.next_attempt_at <= clock() + timedelta(seconds=10)
    assert not await worker.process_next()  # not due yet

    for _ in range(2):
        clock.advance(timedelta(minutes=5))
        assert await worker.process_next()
    parked = await event(runtime.database, webhook_id)
    assert (parked.status, parked.attempts) == ("parked", 3)
    clock.advance(timedelta(days=1))
    assert not await worker.process_next()

    listed = await client.get(
        "/v1/webhooks/events", params={"status": "parked"}, headers=await make_key(Scope.read)
    )
    [item] = listed.json()["items"]
    assert (item["webhook_id"], item["attempts"]) == (webhook_id, 3)
    assert "Shopify answered 503" in item["last_error"]


async def test_an_event_that_cannot_succeed_is_parked_at_once_and_can_be_requeued(
    client: httpx.AsyncClient, runtime: Runtime, sessions: async_sessionmaker[AsyncSession]
) -> None:
    webhook_id = await receive(client, return_request_payload(order_id=123))
    await drain(Worker(runtime.database, runtime.handlers))

    parked = await event(runtime.database, webhook_id)
    assert (parked.status, parked.attempts) == ("parked", 1)
    assert parked.last_error is not None
    assert parked.last_error.startswith("OrderNotFound")
    assert await all_decisions(runtime.database) == []

    async with sessions.begin() as session:
        assert await webhook_events.requeue_parked(session, webhook_id, datetime.now(UTC))
    requeued = await event(runtime.database, webhook_id)
    assert (requeued.status, requeued.attempts) == ("pending", 0)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"id": 1}, "names no order"),
        (return_request_payload(lines=((999, 1, "other"),)), "is not a line of order #1001"),
        (return_request_payload(lines=((TOQUE_LINE, 0, "other"),)), "no positive quantity"),
    ],
)
async def test_a_return_payload_without_what_a_decision_needs_is_parked(
    client: httpx.AsyncClient,
    runtime: Runtime,
    sessions: async_sessionmaker[AsyncSession],
    payload: dict[str, Any],
    error: str,
) -> None:
    webhook_id = await receive(client, payload)
    await drain(Worker(runtime.database, runtime.handlers))
    parked = await event(runtime.database, webhook_id)
    assert parked.status == "parked"
    assert parked.last_error is not None
    assert error in parked.last_error


@pytest.mark.parametrize("topic", ["orders/create", "customers/update"])
async def test_topics_without_a_handler_are_ignored(
    client: httpx.AsyncClient, runtime: Runtime, sessions: async_sessionmaker[AsyncSession], topic: str
) -> None:
    webhook_id = await receive(client, {"id": 5}, topic=topic)
    await drain(Worker(runtime.database, runtime.handlers))
    ignored = await event(runtime.database, webhook_id)
    assert (ignored.status, ignored.outcome) == ("ignored", f"no handler for {topic}")


async def test_an_effect_that_fails_halfway_is_rolled_back_with_its_event(
    client: httpx.AsyncClient, runtime: Runtime, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async def decide_then_fail(event: WebhookEvent, now: datetime) -> Apply:
        store_decision = await runtime.handlers["returns/request"].prepare(event, now)

        async def apply(session: AsyncSession) -> str:
            await store_decision(session)
            raise RuntimeError("the disk is full")

        return apply

    webhook_id = await receive(client, return_request_payload())
    assert await Worker(runtime.database, {"returns/request": Handler(decide_then_fail)}).process_next()

    assert await all_decisions(runtime.database) == []
    retried = await event(runtime.database, webhook_id)
    assert (retried.status, retried.last_error) == ("pending", "RuntimeError: the disk is full")


class UntilIdle(Worker):
    """A worker whose loop stops once it finds the inbox empty."""

    def __init__(self, runtime: Runtime, stop: asyncio.Event) -> None:
        super().__init__(runtime.database, runtime.handlers)
        self._stop = stop

    async def process_next(self) -> bool:
        busy = await super().process_next()
        if not busy:
            self._stop.set()
        return busy


async def test_the_worker_loop_reports_the_inbox_depth_and_age_to_metrics(
    client: httpx.AsyncClient, runtime: Runtime, metrics: Metrics
) -> None:
    from app import metrics as app_metrics

    just_now = datetime.now(UTC).isoformat()  # received now: the inbox's age counts from arrival
    await receive(client, return_request_payload(), triggered_at=just_now)
    await receive(client, return_request_payload(return_id=9_002), triggered_at=just_now)
    clock = Clock()
    clock.advance(timedelta(minutes=3))
    await Worker(runtime.database, runtime.handlers, clock=clock).record_backlog()
    assert metrics.value("returns_router_webhook_inbox_depth") == 2
    assert 170 <= metrics.value("returns_router_webhook_inbox_oldest_age_seconds") <= 200

    # The loop measures as it starts (both still waiting), then works; afterwards the inbox is empty.
    app_metrics.record_webhook_inbox(-1, -1)
    stop = asyncio.Event()
    worker = UntilIdle(runtime, stop)
    await asyncio.wait_for(worker.run(stop, poll_interval=60), timeout=30)
    assert metrics.value("returns_router_webhook_inbox_depth") == 2
    await worker.record_backlog()
    assert metrics.value("returns_router_webhook_inbox_depth") == 0
    assert metrics.value("returns_router_webhook_inbox_oldest_age_seconds") == 0
