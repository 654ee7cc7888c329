"""Shopify outcomes from what the service sees: its own actions, refunds/create and return status
webhooks, in whatever order they arrive; and the read-back of decisions still open."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.db import outcomes as outcome_rows
from app.runtime import Runtime
from app.services.outcome_jobs import OutcomeJobs, Schedule
from app.services.webhooks.worker import Worker
from tests.fakes.shopify_admin import FakeShopify
from tests.routers.test_actions import act, decide
from tests.services.webhooks.test_worker import drain, receive
from tests.webhook_builders import refund_payload, return_event_payload, return_request_payload


async def outcome_of(live: httpx.AsyncClient, agent: dict[str, str], decision_id: str) -> Any:
    response = await live.get(f"/v1/decisions/{decision_id}", headers=agent)
    assert response.status_code == 200, response.text
    return response.json()["outcome"]


async def only_decision(live: httpx.AsyncClient, agent: dict[str, str]) -> str:
    [decision] = (await live.get("/v1/decisions", headers=agent)).json()["items"]
    return str(decision["decision_id"])


async def test_a_refund_announced_before_its_decision_is_picked_up_by_it(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    worker = Worker(live_runtime.database, live_runtime.handlers)
    # The refund's webhook is processed first (made 2026-11-21), the return request after it.
    await receive(live, refund_payload(note="refunded at the counter"), topic="refunds/create")
    await drain(worker)
    await receive(live, return_request_payload(return_id=9_001), triggered_at="2026-11-20T15:00:00Z")
    await drain(worker)

    decision_id = await only_decision(live, agent)
    outcome = await outcome_of(live, agent, decision_id)
    assert outcome["status"] == "refunded"
    assert outcome["refunded"] == {"amount": "10.00", "currency": "CAD"}
    assert outcome["source"] == "shopify"
    assert outcome["a_to_z_claim"] is False
    assert outcome["resolved_at"] == "2026-11-21T15:15:00Z"


async def test_a_declined_return_is_declined_and_a_reopened_one_open_again(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    worker = Worker(live_runtime.database, live_runtime.handlers)
    await receive(live, return_request_payload(return_id=9_001), triggered_at="2026-11-20T15:00:00Z")
    await drain(worker)
    decision_id = await only_decision(live, agent)
    assert (await outcome_of(live, agent, decision_id))["status"] == "open"

    declined = return_event_payload(status="declined", updated_at="2026-11-21T09:00:00Z")
    await receive(live, declined, topic="returns/decline")
    await drain(worker)
    outcome = await outcome_of(live, agent, decision_id)
    assert (outcome["status"], outcome["resolved_at"]) == ("declined", "2026-11-21T09:00:00Z")

    reopened = return_event_payload(status="open", updated_at="2026-11-22T09:00:00Z")
    await receive(live, reopened, topic="returns/reopen")
    await drain(worker)
    outcome = await outcome_of(live, agent, decision_id)
    assert (outcome["status"], outcome["resolved_at"]) == ("open", None)


async def test_store_credit_taken_by_the_service_is_retained_value(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    decision = await decide(live, agent)
    assert await outcome_of(live, agent, decision["decision_id"]) is None  # nothing known yet

    response = await act(live, agent, decision["decision_id"], "store-credit", "credit-1")
    assert response.status_code == 201, response.text

    outcome = await outcome_of(live, agent, decision["decision_id"])
    assert outcome["status"] == "store_credit"
    assert outcome["retained"] == response.json()["amount"]
    assert outcome["refunded"] is None


async def test_a_refund_counts_for_the_latest_decision_before_it_only(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    earlier = await decide(live, agent, as_of="2026-11-20T10:00:00Z")
    later = await decide(live, agent, as_of="2026-11-21T10:00:00Z")
    worker = Worker(live_runtime.database, live_runtime.handlers)
    await receive(live, refund_payload(), topic="refunds/create")  # made 2026-11-21T15:15Z
    await drain(worker)
    assert await outcome_of(live, agent, earlier["decision_id"]) is None
    assert (await outcome_of(live, agent, later["decision_id"]))["status"] == "refunded"


async def test_decisions_about_one_order_are_read_back_with_one_reading_of_it(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    decided = [await decide(live, agent), await decide(live, agent)]  # a ticket and its follow-up
    later = datetime.now(UTC) + timedelta(days=4)
    jobs = OutcomeJobs(
        live_runtime.database,
        live_runtime.connectors,
        {},
        live_runtime.channels,
        Schedule(),
        clock=lambda: later,
    )

    assert await jobs.read_back() == 2
    assert shopify.calls["OrderOutcome"] == 1
    async with live_runtime.database.reading() as session:
        for decision in decided:
            checked = await outcome_rows.get(session, uuid.UUID(decision["decision_id"]))
            assert checked is not None
            assert checked.checked_at is not None


async def test_the_read_back_settles_decisions_still_open_and_stays_bounded(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    first = await decide(live, agent)
    second = await decide(live, agent, order_ref="#1003")
    # A refund made in Shopify that no webhook announced.
    shopify.refunds.append(
        {
            "id": "gid://shopify/Refund/777",
            "note": None,
            "createdAt": "2026-11-22T12:00:00Z",
            "order_id": "gid://shopify/Order/450789469",
            "totalRefundedSet": {
                "shopMoney": {"amount": "20.00", "currencyCode": "CAD"},
                "presentmentMoney": {"amount": "20.00", "currencyCode": "CAD"},
            },
        }
    )
    later = datetime.now(UTC) + timedelta(days=4)
    jobs = OutcomeJobs(
        live_runtime.database,
        live_runtime.connectors,
        {},
        live_runtime.channels,
        Schedule(read_back_batch=1),
        clock=lambda: later,
    )
    assert await jobs.read_back() == 1  # one order a round, the oldest unchecked first
    assert shopify.calls["OrderOutcome"] == 1
    assert await jobs.read_back() == 1
    assert await jobs.read_back() == 0  # both checked: not again before a day has passed
    outcome = await outcome_of(live, agent, first["decision_id"])
    assert (outcome["status"], outcome["refunded"]) == ("refunded", {"amount": "20.00", "currency": "CAD"})
    assert await outcome_of(live, agent, second["decision_id"]) is None
    async with live_runtime.database.reading() as session:
        checked = await outcome_rows.get(session, uuid.UUID(second["decision_id"]))
    assert checked is not None
    assert checked.checked_at is not None
