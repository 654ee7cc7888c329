"""Return status and refund events against a live Shopify channel (the fake Admin endpoint): they
update the actions and decisions they concern, once, and never undo a newer state."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.db.database import Database
from app.db.tables import ShopifyRefund, ShopifyReturn
from app.domain import Money
from app.runtime import Runtime
from app.services.webhooks.worker import Worker
from tests.fakes.shopify_admin import FakeShopify
from tests.routers.test_actions import act, decide
from tests.services.webhooks.test_worker import drain, event, receive
from tests.webhook_builders import refund_payload, return_event_payload, return_request_payload

ORDER_GID = "gid://shopify/Order/450789469"


async def refunds(database: Database) -> list[ShopifyRefund]:
    async with database.reading() as session:
        return list((await session.scalars(select(ShopifyRefund))).all())


async def shown(live: httpx.AsyncClient, agent: dict[str, str], decision_id: str) -> dict[str, Any]:
    response = await live.get(f"/v1/decisions/{decision_id}", headers=agent)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def requested_decision(live: httpx.AsyncClient, agent: dict[str, str], worker: Worker) -> str:
    """The decision a customer's `returns/request` for Return 9001 makes."""
    await receive(live, return_request_payload(return_id=9_001), triggered_at="2026-11-20T15:00:00Z")
    await drain(worker)
    listed = await live.get("/v1/decisions", headers=agent)
    [decision] = listed.json()["items"]
    return str(decision["decision_id"])


# --- refunds/create ------------------------------------------------------------------------


async def test_a_refund_made_by_hand_is_known_once_and_settles_the_units_it_covered(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    decision = await decide(live, agent)
    worker = Worker(live_runtime.database, live_runtime.handlers)
    by_hand = refund_payload(
        note="Refunded by Sam at the counter",
        transactions=(
            ("refund", "10.00", "success"),
            ("refund", "5.00", "failure"),
            ("refund", "2.50", "success"),
        ),
    )
    for _ in range(5):
        await receive(live, by_hand, topic="refunds/create", webhook_id="wh-refund")
        await drain(worker)
    second_id = await receive(live, by_hand, topic="refunds/create")  # announced again, another id
    await drain(worker)

    [known] = await refunds(live_runtime.database)
    assert (known.refund_id, known.order_id, known.action_id) == (
        "gid://shopify/Refund/5001",
        ORDER_GID,
        None,
    )
    assert known.amount == Money(
        amount=Decimal("12.50"), currency="CAD"
    )  # the failed transaction paid nothing
    first = await event(live_runtime.database, "wh-refund")
    assert (first.status, first.attempts) == ("processed", 1)
    assert first.outcome == "refund gid://shopify/Refund/5001 of 12.50 CAD recorded, made outside the service"
    assert first.payload is not None
    assert "note" not in first.payload
    assert (
        await event(live_runtime.database, second_id)
    ).outcome == "refund gid://shopify/Refund/5001 known already"

    assert known.lines == [{"line_id": "gid://shopify/LineItem/1071823172", "quantity": 1}]

    refused = await act(live, agent, decision["decision_id"], "refund", "k1")

    assert (refused.status_code, refused.json()["code"]) == (409, "already_settled")
    assert refused.json()["refund_id"] == "gid://shopify/Refund/5001"
    assert "gid://shopify/Refund/5001" in refused.json()["detail"]
    assert shopify.calls["SuggestedRefund"] == shopify.calls["RefundCreate"] == 0
    assert shopify.refunds == []


async def test_a_refund_carrying_a_pending_actions_marker_settles_that_action(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    decision = await decide(live, agent)
    shopify.timeouts_after["RefundCreate"] = 4  # Shopify refunds, every answer is lost...
    shopify.timeouts_after["OrderRefunds"] = 4  # ...and so is the read-back
    shopify.spared["OrderRefunds"] = 1  # (not the one before: the order's refunds, read before recording)
    pending = (await act(live, agent, decision["decision_id"], "refund", "k1", note="Too small")).json()
    assert pending["state"] == "unknown"
    [made] = shopify.refunds
    number = int(made["id"].rsplit("/", 1)[1])

    for _ in range(5):
        await receive(
            live,
            refund_payload(
                refund_id=number, note=made["note"], transactions=(("refund", "80.68", "success"),)
            ),
            topic="refunds/create",
            webhook_id="wh-ours",
        )
        await drain(Worker(live_runtime.database, live_runtime.handlers))

    [settled] = (await shown(live, agent, decision["decision_id"]))["actions"]
    assert (settled["action_id"], settled["status"]) == (pending["action_id"], "succeeded")
    assert settled["shopify"] == {"refund_id": made["id"], "order_id": ORDER_GID}
    assert settled["amount"] == {"amount": "80.68", "currency": "CAD"}
    [known] = await refunds(live_runtime.database)
    assert known.action_id == uuid.UUID(pending["action_id"])
    stored = await event(live_runtime.database, "wh-ours")
    assert stored.payload is not None
    assert (
        stored.payload["note"] == f"returns-router action {pending['action_id']}"
    )  # "Too small" is not kept
    assert len(shopify.refunds) == 1


async def test_a_refund_marked_by_a_failed_action_still_blocks_refunding_again(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    decision = await decide(live, agent)
    shopify.before["SuggestedRefund"] = [FakeShopify.throttled()] * 10
    failed = (await act(live, agent, decision["decision_id"], "refund", "k1")).json()
    assert failed["status"] == "failed"
    shopify.before.clear()

    note = f"(returns-router action {failed['action_id']})"
    await receive(live, refund_payload(note=note), topic="refunds/create")
    await drain(Worker(live_runtime.database, live_runtime.handlers))

    [known] = await refunds(live_runtime.database)
    assert known.action_id is None  # it stands as a refund the service did not make
    [still_failed] = (await shown(live, agent, decision["decision_id"]))["actions"]
    assert still_failed["status"] == "failed"
    refused = await act(live, agent, decision["decision_id"], "refund", "k2")
    assert (refused.status_code, refused.json()["code"]) == (409, "already_settled")
    assert shopify.calls["RefundCreate"] == 0


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({**refund_payload(), "order_id": None}, "no numeric order_id"),
        ({**refund_payload(), "id": "x", "admin_graphql_api_id": None}, "no numeric id"),
        ({**refund_payload(), "transactions": [], "refund_line_items": []}, "states no currency"),
        (refund_payload(transactions=(("refund", "ten", "success"),)), "has no amount"),
    ],
)
async def test_a_refund_without_what_it_needs_is_parked(
    live: httpx.AsyncClient, live_runtime: Runtime, payload: dict[str, Any], error: str
) -> None:
    webhook_id = await receive(live, payload, topic="refunds/create")
    await drain(Worker(live_runtime.database, live_runtime.handlers))
    parked = await event(live_runtime.database, webhook_id)
    assert parked.status == "parked"
    assert parked.last_error is not None
    assert error in parked.last_error
    assert await refunds(live_runtime.database) == []


# --- Return status events -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "stated", "status"),
    [
        ("returns/approve", "open", "open"),
        ("returns/decline", "declined", "declined"),
        ("returns/cancel", None, "canceled"),
        ("returns/close", "closed", "closed"),
        ("returns/reopen", "open", "open"),
        ("returns/process", "closed", "closed"),
        ("returns/update", None, "requested"),  # states no status: the known one stands
    ],
)
async def test_each_return_topic_updates_the_returns_status_on_its_decision(
    live: httpx.AsyncClient,
    agent: dict[str, str],
    shopify: FakeShopify,
    live_runtime: Runtime,
    topic: str,
    stated: str | None,
    status: str,
) -> None:
    worker = Worker(live_runtime.database, live_runtime.handlers)
    decision_id = await requested_decision(live, agent, worker)
    webhook_id = await receive(
        live, return_event_payload(status=stated, updated_at="2026-11-21T12:00:00Z"), topic=topic
    )
    await drain(worker)

    assert (await event(live_runtime.database, webhook_id)).status == "processed"
    found = await shown(live, agent, decision_id)
    assert found["shopify_returns"] == [
        {
            "return_id": "gid://shopify/Return/9001",
            "status": status,
            "last_event": topic,
            "changed_at": "2026-11-21T12:00:00Z",
        }
    ]
    assert found["actions"] == []


async def test_an_older_reopen_arriving_after_a_newer_close_does_not_undo_it(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    worker = Worker(live_runtime.database, live_runtime.handlers)
    decision_id = await requested_decision(live, agent, worker)
    for _ in range(5):  # the close, delivered five times
        await receive(
            live,
            return_event_payload(status="closed", updated_at="2026-11-22T10:00:00Z"),
            topic="returns/close",
            webhook_id="wh-close",
            triggered_at="2026-11-22T10:00:01Z",
        )
        await drain(worker)
    # The reopen happened before the close; Shopify delivered it late.
    late = await receive(
        live,
        return_event_payload(status="open", updated_at="2026-11-21T10:00:00Z"),
        topic="returns/reopen",
        triggered_at="2026-11-23T08:00:00Z",
    )
    await drain(worker)

    assert (await event(live_runtime.database, late)).status == "superseded"
    closed = await event(live_runtime.database, "wh-close")
    assert (closed.status, closed.attempts) == ("processed", 1)
    [the_return] = (await shown(live, agent, decision_id))["shopify_returns"]
    assert (the_return["status"], the_return["last_event"]) == ("closed", "returns/close")


async def test_a_late_return_request_still_decides_but_keeps_the_newer_status(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    worker = Worker(live_runtime.database, live_runtime.handlers)
    await receive(
        live, return_event_payload(status="open", updated_at="2026-11-21T10:00:00Z"), topic="returns/approve"
    )
    await drain(worker)

    decision_id = await requested_decision(live, agent, worker)  # the request happened on 2026-11-20

    [the_return] = (await shown(live, agent, decision_id))["shopify_returns"]
    assert (the_return["status"], the_return["last_event"]) == ("open", "returns/approve")


# --- Exchanges settled by their Return's events -------------------------------------------------


async def exchange(live: httpx.AsyncClient, agent: dict[str, str]) -> tuple[str, dict[str, Any]]:
    decision = await decide(live, agent, items=[{"sku": "TOQ-MER-GRY"}])
    response = await act(
        live,
        agent,
        decision["decision_id"],
        "exchange",
        "x1",
        exchange_for=[{"variant_id": "39072856", "quantity": 1}],
    )
    assert response.status_code == 201, response.text
    return decision["decision_id"], response.json()


def return_number(gid: str) -> int:
    return int(gid.rsplit("/", 1)[1])


async def test_an_exchange_whose_answer_was_lost_is_settled_by_returns_process(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    shopify.timeouts_after["ReturnProcess"] = 1  # processed, the answer lost
    decision_id, pending = await exchange(live, agent)
    assert pending["state"] == "unknown"
    [created] = shopify.returns

    await receive(
        live,
        return_event_payload(return_id=return_number(created["id"]), status="closed"),
        topic="returns/process",
    )
    await drain(Worker(live_runtime.database, live_runtime.handlers))

    found = await shown(live, agent, decision_id)
    [settled] = found["actions"]
    assert (settled["status"], settled["shopify"]["return_id"]) == ("succeeded", created["id"])
    assert [r["status"] for r in found["shopify_returns"]] == ["closed"]
    assert shopify.calls["ReturnProcess"] == 1  # read back, not processed again
    assert shopify.calls["ReturnCreate"] == 1


async def test_an_exchange_declined_in_shopify_fails_and_frees_its_decision(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    shopify.before["ReturnProcess"] = [httpx.Response(503, text="unavailable")]
    decision_id, pending = await exchange(live, agent)
    assert pending["state"] == "unknown"
    [created] = shopify.returns
    created["status"] = "DECLINED"  # a merchant declined it in the admin

    for _ in range(5):
        await receive(
            live,
            return_event_payload(return_id=return_number(created["id"]), status="declined"),
            topic="returns/decline",
            webhook_id="wh-decline",
        )
        await drain(Worker(live_runtime.database, live_runtime.handlers))

    [failed] = (await shown(live, agent, decision_id))["actions"]
    assert (failed["status"], failed["error"]["code"]) == ("failed", "return_declined")
    assert shopify.calls["ReturnProcess"] == 1  # the one that never ran; not sent again
    refund = await act(live, agent, decision_id, "refund", "r1")
    assert (refund.status_code, refund.json()["status"]) == (201, "succeeded")


# --- Side by side ---------------------------------------------------------------------------------


async def test_two_workers_on_one_queue_record_each_refund_and_status_once(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    ids = []
    for n in range(8):
        for _ in range(2):  # each refund announced under two webhook ids
            ids.append(await receive(live, refund_payload(refund_id=6_000 + n), topic="refunds/create"))
        ids.append(
            await receive(
                live,
                return_event_payload(return_id=7_000 + n, status="closed", updated_at="2026-11-22T10:00:00Z"),
                topic="returns/close",
            )
        )

    done = await asyncio.gather(
        drain(Worker(live_runtime.database, live_runtime.handlers)),
        drain(Worker(live_runtime.database, live_runtime.handlers)),
    )

    assert sum(done) == len(ids)
    known = await refunds(live_runtime.database)
    assert sorted(r.refund_id for r in known) == [f"gid://shopify/Refund/{6_000 + n}" for n in range(8)]
    async with live_runtime.database.reading() as session:
        statuses = list((await session.scalars(select(ShopifyReturn.status))).all())
    assert statuses == ["closed"] * 8
    outcomes = []
    for webhook_id in ids:
        finished = await event(live_runtime.database, webhook_id)
        assert (finished.status, finished.attempts) == ("processed", 1)
        outcomes.append(finished.outcome or "")
    assert sum("recorded" in outcome for outcome in outcomes) == 8
    assert sum("known already" in outcome for outcome in outcomes) == 8
