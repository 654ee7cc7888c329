"""Money moves once per returned unit, across decisions, keys and replicas.

The same Shopify return routed several times (a helpdesk call and the `returns/request` webhook for
it is the ordinary case) makes several decisions about the same units. Whichever of them an agent
acts on, under whichever key and on whichever replica, each unit is refunded, credited or exchanged
once; the others are 409 `already_settled`, naming what settled the units, and nothing is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select

from app.db.tables import Decision, ShopifyRefund
from app.domain import Money
from app.runtime import Runtime
from app.services import actions
from app.services.webhooks.worker import Worker
from tests.conftest import serving
from tests.fakes.shopify_admin import FakeShopify
from tests.routers.test_actions import act, decide, stored_actions
from tests.webhook_builders import delivery, refund_payload, return_request_payload

ORDER = "gid://shopify/Order/450789469"  # #1001: one toque (39.00 CAD) and one pair of mittens (45.00 CAD)
TOQUE, MITTENS = "gid://shopify/LineItem/1071823172", "gid://shopify/LineItem/1071823173"
MUTATIONS = ("RefundCreate", "StoreCreditCredit", "ReturnCreate", "ReturnProcess")


def money_moved(shopify: FakeShopify) -> int:
    return len(shopify.refunds) + len(shopify.credits) + len(shopify.returns)


def assert_already_settled(response: httpx.Response, by_action: str | None = None) -> dict[str, Any]:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["code"] == "already_settled"
    if by_action is not None:
        assert problem["action_id"] == by_action
        assert by_action in problem["detail"]
    return problem


async def decision_from_webhook(live: httpx.AsyncClient, runtime: Runtime) -> str:
    """The `returns/request` webhook of the same return (the toque), processed by the worker."""
    body, headers = delivery(return_request_payload())
    assert (await live.post("/webhooks/shopify", content=body, headers=headers)).status_code == 200
    assert await Worker(runtime.database, runtime.handlers).process_next()
    async with runtime.database.reading() as session:
        made = await session.scalars(select(Decision.id).where(Decision.webhook_event_id.is_not(None)))
        [decision_id] = made.all()
    return str(decision_id)


async def test_the_same_return_routed_three_times_is_paid_once(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    toque = [{"sku": "TOQ-MER-GRY"}]
    first = await decide(live, agent, items=toque, ticket_id="T-1")
    second = await decide(live, agent, items=toque, ticket_id="T-2")
    third = await decision_from_webhook(live, live_runtime)

    credited = await act(live, agent, first["decision_id"], "store-credit", "credit-1")
    assert credited.status_code == 201, credited.text
    winner = credited.json()["action_id"]
    calls = dict(shopify.calls)

    credited_again = await act(live, agent, second["decision_id"], "store-credit", "credit-2")
    refunded = await act(live, agent, third, "refund", "refund-3")

    assert_already_settled(credited_again, by_action=winner)
    assert_already_settled(refunded, by_action=winner)
    assert (len(shopify.credits), shopify.refunds, shopify.returns) == (1, [], [])
    # The refusals read the order's refunds back, and sent nothing.
    assert {op: n - calls.get(op, 0) for op, n in shopify.calls.items() if n != calls.get(op, 0)} == {
        "OrderRefunds": 2
    }
    assert await stored_actions(live, agent, second["decision_id"]) == []
    assert await stored_actions(live, agent, third) == []


async def test_units_not_settled_yet_can_still_be_paid(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    of_the_toque = await decide(live, agent, items=[{"sku": "TOQ-MER-GRY"}])
    of_both, of_both_again = await decide(live, agent), await decide(live, agent)

    credited = await act(live, agent, of_the_toque["decision_id"], "store-credit", "c-1")
    both = await act(live, agent, of_both["decision_id"], "refund", "r-2")
    mittens = await act(live, agent, of_both["decision_id"], "refund", "r-3", items=[{"sku": "MIT-SHP-M"}])
    exchanged = await act(live, agent, of_both_again["decision_id"], "exchange", "x-4", **EXCHANGE)

    assert credited.status_code == 201, credited.text
    assert_already_settled(both, by_action=credited.json()["action_id"])
    assert mittens.status_code == 201, mittens.text
    problem = assert_already_settled(exchanged)
    assert credited.json()["action_id"] in problem["detail"]
    assert mittens.json()["action_id"] in problem["detail"]
    [refund] = shopify.refunds
    assert [line["lineItemId"] for line in refund["lines"]] == [MITTENS]
    assert (len(shopify.credits), shopify.returns) == (1, [])


EXCHANGE = {"exchange_for": [{"variant_id": "gid://shopify/ProductVariant/39072856"}]}


async def test_a_failed_action_frees_its_units(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    first, second = await decide(live, agent), await decide(live, agent)
    shopify.before["StoreCreditCredit"] = [FakeShopify.throttled() for _ in range(3)]  # never ran

    failed = await act(live, agent, first["decision_id"], "store-credit", "c-1")
    refunded = await act(live, agent, second["decision_id"], "refund", "r-2")

    assert failed.json()["status"] == "failed"
    assert refunded.status_code == 201, refunded.text
    assert refunded.json()["status"] == "succeeded"
    assert (len(shopify.refunds), shopify.credits) == (1, [])


# --- Two replicas of the service on one database ---------------------------------------------


@pytest.fixture
async def other_replica(live_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A second instance of the live service: its own pool, caches and connectors, the same database."""
    async with serving(live_app.state.runtime.settings) as http:
        yield http


@pytest.mark.parametrize("attempt", range(3))
async def test_concurrent_actions_from_two_replicas_pay_once(
    live: httpx.AsyncClient,
    other_replica: httpx.AsyncClient,
    agent: dict[str, str],
    shopify: FakeShopify,
    attempt: int,
) -> None:
    decisions = [(await decide(live, agent, ticket_id=f"T-{n}"))["decision_id"] for n in range(3)]
    shopify.latency = 0.01  # let the requests interleave

    responses = await asyncio.gather(
        act(live, agent, decisions[0], "store-credit", f"credit-a-{attempt}"),
        act(other_replica, agent, decisions[1], "store-credit", f"credit-b-{attempt}"),
        act(other_replica if attempt % 2 else live, agent, decisions[2], "refund", f"refund-c-{attempt}"),
    )

    [winner] = [r.json() for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(refused) == 2
    for response in refused:
        assert_already_settled(response, by_action=winner["action_id"])
    assert winner["status"] == "succeeded"
    assert money_moved(shopify) == 1
    assert sum(shopify.calls[op] for op in MUTATIONS) == 1


# --- Refunds made in Shopify's admin ---------------------------------------------------------


async def test_a_refund_made_by_hand_blocks_the_units_it_covered_not_the_others(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    decision = await decide(live, agent)
    # Shopify reports it by webhook: the toque, refunded at the counter.
    body, headers = delivery(refund_payload(refund_id=5_001), topic="refunds/create")
    assert (await live.post("/webhooks/shopify", content=body, headers=headers)).status_code == 200
    assert await Worker(live_runtime.database, live_runtime.handlers).process_next()

    both = await act(live, agent, decision["decision_id"], "store-credit", "c-1")
    toque = await act(live, agent, decision["decision_id"], "refund", "r-2", items=[{"sku": "TOQ-MER-GRY"}])
    mittens = await act(live, agent, decision["decision_id"], "refund", "r-3", items=[{"sku": "MIT-SHP-M"}])

    for refused in (both, toque):
        problem = assert_already_settled(refused)
        assert problem["refund_id"] == "gid://shopify/Refund/5001"
        assert "gid://shopify/Refund/5001" in problem["detail"]
    assert mittens.status_code == 201, mittens.text
    [refund] = shopify.refunds
    assert [line["lineItemId"] for line in refund["lines"]] == [MITTENS]
    assert shopify.credits == []


async def test_a_refund_made_by_hand_is_read_back_before_anything_is_sent(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    decision = await decide(live, agent)
    by_hand = shopify.refund_by_hand(ORDER, [(MITTENS, 1)], "50.85")  # no webhook has told the service

    credit = await act(live, agent, decision["decision_id"], "store-credit", "c-1")  # both lines
    exchanged = await act(
        live, agent, decision["decision_id"], "exchange", "x-2", items=[{"sku": "TOQ-MER-GRY"}], **EXCHANGE
    )

    assert assert_already_settled(credit)["refund_id"] == by_hand["id"]
    assert exchanged.status_code == 201, exchanged.text
    assert (shopify.credits, len(shopify.refunds), len(shopify.returns)) == ([], 1, 1)


async def test_a_refund_recorded_without_its_lines_blocks_the_order_until_they_are_read_back(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    decision = await decide(live, agent)
    by_hand = shopify.refund_by_hand(ORDER, [(TOQUE, 1)], "44.07")
    unknown = "gid://shopify/Refund/1"  # recorded before lines were, and gone from Shopify since
    for refund_id in (by_hand["id"], unknown):
        async with live_runtime.database.transaction() as session:
            await actions.record_shopify_refund(
                session,
                channel="shopify_ca",
                order_id=ORDER,
                refund_id=refund_id,
                amount=Money(amount=Decimal("44.07"), currency="CAD"),
                created_at=datetime.now(UTC),
                note=None,
            )

    blocked = await act(live, agent, decision["decision_id"], "refund", "r-1", items=[{"sku": "MIT-SHP-M"}])

    assert assert_already_settled(blocked)["refund_id"] == unknown
    assert "which lines" in blocked.json()["detail"]
    async with live_runtime.database.reading() as session:
        learned = await session.get(ShopifyRefund, by_hand["id"])
    assert learned is not None
    assert learned.lines == [{"line_id": TOQUE, "quantity": 1}]  # read back meanwhile

    async with live_runtime.database.transaction() as session:  # the unknown one, sorted out by hand
        await session.execute(delete(ShopifyRefund).where(ShopifyRefund.refund_id == unknown))
    mittens = await act(live, agent, decision["decision_id"], "refund", "r-2", items=[{"sku": "MIT-SHP-M"}])
    another = await decide(live, agent, ticket_id="T-2")
    toque = await act(live, agent, another["decision_id"], "refund", "r-3", items=[{"sku": "TOQ-MER-GRY"}])

    assert mittens.status_code == 201, mittens.text
    assert assert_already_settled(toque)["refund_id"] == by_hand["id"]
