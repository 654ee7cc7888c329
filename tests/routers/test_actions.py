"""The one-click actions end to end: a live Shopify channel pointed at the fake Admin endpoint.

The fake records every refund, return and credit it performs; each test checks that exactly one
was made, whatever was retried, duplicated, lost or interrupted, and that the stored action says
what the fake did.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.db.database import unavailable_problem
from app.db.tables import Action
from app.domain import Money
from app.runtime import Runtime
from app.services import actions
from app.services.actions import Actions
from app.services.api_keys import Scope
from app.services.idempotency import Idempotency
from tests.conftest import MakeKey
from tests.fakes.shopify_admin import FakeShopify

SHOPIFY_ON = "#1001"  # 39.00 + 45.00 CAD, 13% HST: 94.92 paid
AS_OF = "2026-11-20T15:00:00Z"


async def decide(live: httpx.AsyncClient, agent: dict[str, str], **body: Any) -> dict[str, Any]:
    body = {"order_ref": SHOPIFY_ON, "reason": "size_or_fit", "as_of": AS_OF, **body}
    response = await live.post("/v1/returns/route", json=body, headers=agent)
    assert response.status_code == 201, response.text
    decision: dict[str, Any] = response.json()
    return decision


async def act(
    live: httpx.AsyncClient, agent: dict[str, str], decision_id: str, kind: str, key: str | None, **body: Any
) -> httpx.Response:
    headers = {**agent, **({"Idempotency-Key": key} if key else {})}
    return await live.post(f"/v1/decisions/{decision_id}/actions/{kind}", json=body, headers=headers)


async def stored_actions(
    live: httpx.AsyncClient, agent: dict[str, str], decision_id: str
) -> list[dict[str, Any]]:
    response = await live.get(f"/v1/decisions/{decision_id}", headers=agent)
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.json()["actions"]
    return found


# --- Refund ------------------------------------------------------------------------------


async def test_a_refund_is_made_once_net_of_the_restocking_fee(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    decision = await decide(live, agent)
    assert decision["sandbox"] is False
    assert decision["policy"]["restocking_fee"]["max_percent"] == "15"

    response = await act(live, agent, decision["decision_id"], "refund", "refund-1", note="Too small")

    assert response.status_code == 201, response.text
    action = response.json()
    [refund] = shopify.refunds
    # 94.92 paid for both lines (tax included), less 15%: 80.682, rounded down.
    assert refund["totalRefundedSet"]["presentmentMoney"] == {"amount": "80.68", "currencyCode": "CAD"}
    assert action["status"] == "succeeded"
    assert action["amount"] == {"amount": "80.68", "currency": "CAD"}
    assert action["shopify"] == {"refund_id": refund["id"], "order_id": "gid://shopify/Order/450789469"}
    assert refund["note"] == f"Too small (returns-router action {action['action_id']})"
    assert [line["lineItemId"] for line in refund["lines"]] == [
        "gid://shopify/LineItem/1071823172",
        "gid://shopify/LineItem/1071823173",
    ]
    assert shopify.idempotency.keys() == {action["action_id"]}  # the action's own id is the key
    assert await stored_actions(live, agent, decision["decision_id"]) == [action]


@pytest.mark.parametrize("name", ["items", "lines"])
async def test_a_refund_takes_the_returned_lines_as_items_or_by_their_former_name(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, name: str
) -> None:
    decision = await decide(live, agent)

    chosen = {name: [{"sku": "MIT-SHP-M", "quantity": 1}]}
    response = await act(live, agent, decision["decision_id"], "refund", "one-line", **chosen)

    assert response.status_code == 201, response.text
    [refund] = shopify.refunds
    assert [line["lineItemId"] for line in refund["lines"]] == ["gid://shopify/LineItem/1071823173"]


async def test_a_refund_naming_its_lines_twice_is_refused(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    decision = await decide(live, agent)
    line = [{"sku": "MIT-SHP-M", "quantity": 1}]

    response = await act(live, agent, decision["decision_id"], "refund", "twice", items=line, lines=line)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "lines"]
    assert shopify.refunds == []


async def test_fifty_concurrent_identical_refund_calls_refund_once(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    decision = await decide(live, agent)
    shopify.latency = 0.01

    responses = await asyncio.gather(
        *(act(live, agent, decision["decision_id"], "refund", "same-key") for _ in range(50))
    )

    statuses = sorted(r.status_code for r in responses)
    created = [r.json() for r in responses if r.status_code == 201]
    assert set(statuses) <= {201, 409}
    assert created
    assert {a["action_id"] for a in created} == {created[0]["action_id"]}
    assert all(r.json()["code"] == "idempotency_in_flight" for r in responses if r.status_code == 409)
    assert len(shopify.refunds) == 1
    assert shopify.calls["RefundCreate"] == 1
    [stored] = await stored_actions(live, agent, decision["decision_id"])
    assert (stored["status"], stored["shopify"]["refund_id"]) == ("succeeded", shopify.refunds[0]["id"])


async def test_fifty_concurrent_refunds_under_different_keys_refund_once(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    decision = await decide(live, agent)
    shopify.latency = 0.01

    responses = await asyncio.gather(
        *(act(live, agent, decision["decision_id"], "refund", f"key-{n}") for n in range(50))
    )

    [winner] = [r.json() for r in responses if r.status_code == 201]
    refused = [r.json() for r in responses if r.status_code != 201]
    assert len(refused) == 49
    assert {p["code"] for p in refused} == {"action_not_allowed"}
    assert {p["action_id"] for p in refused} == {winner["action_id"]}
    assert len(shopify.refunds) == 1
    assert shopify.calls["RefundCreate"] == 1


async def test_retries_with_the_same_and_with_a_new_key(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    decision = await decide(live, agent)
    first = await act(live, agent, decision["decision_id"], "refund", "k1")
    again = await act(live, agent, decision["decision_id"], "refund", "k1")
    other = await act(live, agent, decision["decision_id"], "refund", "k2")
    credit = await act(live, agent, decision["decision_id"], "store-credit", "k3")

    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    for refused in (other, credit):
        assert refused.status_code == 409
        assert refused.json()["code"] == "action_not_allowed"
        assert refused.json()["action_id"] == first.json()["action_id"]
    assert len(shopify.refunds) == 1
    assert shopify.calls["RefundCreate"] == 1


async def test_a_timeout_after_shopify_refunded_refunds_once(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    decision = await decide(live, agent)
    shopify.timeouts_after["RefundCreate"] = 1

    response = await act(live, agent, decision["decision_id"], "refund", "k1")

    assert response.json()["status"] == "succeeded"
    assert shopify.calls["RefundCreate"] == 2  # sent again under the same key...
    assert len(shopify.refunds) == 1  # ...which Shopify answered with the first refund
    assert response.json()["shopify"]["refund_id"] == shopify.refunds[0]["id"]


async def test_a_lost_outcome_is_unknown_until_read_back(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    decision = await decide(live, agent)
    shopify.timeouts_after["RefundCreate"] = 4  # every attempt refunded or replayed, every answer lost
    shopify.timeouts_after["OrderRefunds"] = 4  # and the read-back right after fails too
    shopify.spared["OrderRefunds"] = 1  # (not the one before: the order's refunds, read before recording)

    response = await act(live, agent, decision["decision_id"], "refund", "k1")

    action = response.json()
    assert (response.status_code, action["status"], action["state"]) == (201, "pending", "unknown")
    assert len(shopify.refunds) == 1
    settled = await live_runtime.actions.reconcile(uuid.UUID(action["action_id"]))
    assert settled is not None
    assert (settled.status, settled.shopify["refund_id"]) == ("succeeded", shopify.refunds[0]["id"])
    assert shopify.calls["RefundCreate"] == 4  # the read-back found it: nothing sent again
    assert len(shopify.refunds) == 1


async def test_a_restart_between_recording_and_sending_refunds_once(
    live: httpx.AsyncClient,
    agent: dict[str, str],
    shopify: FakeShopify,
    live_runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decision = await decide(live, agent)

    async def process_dies(*_args: object) -> None:
        raise RuntimeError("the process died")

    with monkeypatch.context() as patch:
        patch.setattr(Actions, "run", process_dies)
        with pytest.raises(RuntimeError):
            await act(live, agent, decision["decision_id"], "refund", "k1")
    [recorded] = await stored_actions(live, agent, decision["decision_id"])
    assert (recorded["state"], shopify.calls["RefundCreate"]) == ("requested", 0)

    # Another key cannot start a second action meanwhile; the same request, retried, resumes.
    other = await act(live, agent, decision["decision_id"], "refund", "k2")
    assert (other.status_code, other.json()["action_id"]) == (409, recorded["action_id"])
    resumed = await act(live, agent, decision["decision_id"], "refund", "k1")

    assert resumed.json()["action_id"] == recorded["action_id"]
    assert resumed.json()["status"] == "succeeded"
    assert len(shopify.refunds) == 1
    assert shopify.calls["RefundCreate"] == 1


async def test_a_retry_after_the_refund_was_made_but_its_answer_not_stored_answers_the_refund(
    live: httpx.AsyncClient,
    agent: dict[str, str],
    shopify: FakeShopify,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decision = await decide(live, agent)

    async def database_gone(*_args: object) -> None:
        raise unavailable_problem()

    # Shopify refunded; storing the answer for the Idempotency-Key failed, so the key is free again.
    with monkeypatch.context() as patch:
        patch.setattr(Idempotency, "complete", database_gone)
        lost = await act(live, agent, decision["decision_id"], "refund", "k1")
    assert lost.status_code == 503
    retried = await act(live, agent, decision["decision_id"], "refund", "k1")

    assert retried.status_code == 201, retried.text
    assert retried.json()["status"] == "succeeded"
    assert len(shopify.refunds) == 1
    assert shopify.calls["RefundCreate"] == 1


async def test_a_stale_action_is_finished_by_reconciliation(
    live: httpx.AsyncClient,
    agent: dict[str, str],
    shopify: FakeShopify,
    live_runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decision = await decide(live, agent)

    async def process_dies(*_args: object) -> None:
        raise RuntimeError("the process died")

    with monkeypatch.context() as patch:
        patch.setattr(Actions, "run", process_dies)
        with pytest.raises(RuntimeError):
            await act(live, agent, decision["decision_id"], "refund", "k1")
    async with live_runtime.database.transaction() as session:
        await session.execute(update(Action).values(updated_at=datetime.now(UTC) - timedelta(minutes=5)))

    assert await live_runtime.actions.reconcile_stale() == 1
    assert await live_runtime.actions.reconcile_stale() == 0

    [stored] = await stored_actions(live, agent, decision["decision_id"])
    assert stored["status"] == "succeeded"
    assert len(shopify.refunds) == 1


async def test_a_refund_made_in_shopify_is_recorded_once_and_blocks_the_units_it_covered(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    decision = await decide(live, agent)
    order_id = "gid://shopify/Order/450789469"
    amount = Money(amount=Decimal("44.07"), currency="CAD")
    toque = [("gid://shopify/LineItem/1071823172", 1)]
    by_hand = dict(
        channel="shopify_ca", order_id=order_id, amount=amount, created_at=datetime.now(UTC), note=None
    )
    async with live_runtime.database.transaction() as session:
        assert await actions.record_shopify_refund(
            session, refund_id="gid://shopify/Refund/1", lines=toque, **by_hand
        )
        assert not await actions.record_shopify_refund(
            session, refund_id="gid://shopify/Refund/1", lines=toque, **by_hand
        )

    refused = await act(live, agent, decision["decision_id"], "refund", "k1")
    mittens = await act(live, agent, decision["decision_id"], "refund", "k2", items=[{"sku": "MIT-SHP-M"}])

    assert (refused.status_code, refused.json()["code"]) == (409, "already_settled")
    assert refused.json()["refund_id"] == "gid://shopify/Refund/1"
    assert "gid://shopify/Refund/1" in refused.json()["detail"]
    assert mittens.status_code == 201, mittens.text
    [refund] = shopify.refunds
    assert [line["lineItemId"] for line in refund["lines"]] == ["gid://shopify/LineItem/1071823173"]


# --- Exchange and store credit -----------------------------------------------------------


async def test_an_exchange_creates_and_processes_one_return(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
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
    action = response.json()
    [created] = shopify.returns
    assert action["status"] == "succeeded"
    assert action["shopify"]["return_id"] == created["id"]
    assert created["status"] == "CLOSED"
    assert created["exchangeLineItems"]["nodes"][0]["variantId"] == "gid://shopify/ProductVariant/39072856"
    assert [line["quantity"] for line in created["returnLineItems"]["nodes"]] == [1]
    assert shopify.calls["ReturnCreate"] == shopify.calls["ReturnProcess"] == 1


async def test_store_credit_carries_the_bonus(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    decision = await decide(live, agent)

    response = await act(live, agent, decision["decision_id"], "store-credit", "c1")

    action = response.json()
    [credit] = shopify.credits
    assert credit["owner"] == "gid://shopify/Customer/207119551"
    assert credit["amount"] == {"amount": "92.40", "currencyCode": "CAD"}  # 84.00 and 10%
    assert (action["status"], action["amount"]) == ("succeeded", {"amount": "92.40", "currency": "CAD"})
    assert action["shopify"]["store_credit_transaction_id"] == credit["id"]
    assert "customer" not in str(action["shopify"]).lower()  # the customer's id is not kept


async def test_store_credit_whose_answer_was_lost_is_read_back_not_resent(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    decision = await decide(live, agent)
    shopify.timeouts_after["StoreCreditCredit"] = 1

    response = await act(
        live,
        agent,
        decision["decision_id"],
        "store-credit",
        "c1",
        amount={"amount": "50.00", "currency": "CAD"},
    )

    assert response.json()["state"] == "unknown"
    settled = await live_runtime.actions.reconcile(uuid.UUID(response.json()["action_id"]))
    assert settled is not None
    assert settled.status == "succeeded"
    assert settled.shopify["store_credit_transaction_id"] == shopify.credits[0]["id"]
    assert shopify.calls["StoreCreditCredit"] == 1
    assert len(shopify.credits) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": {"amount": "92.41", "currency": "CAD"}}, "amount"),
        ({"amount": {"amount": "10.00", "currency": "USD"}}, "amount"),
    ],
)
async def test_store_credit_above_the_policy_is_refused(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, body: dict[str, Any], field: str
) -> None:
    decision = await decide(live, agent)
    response = await act(live, agent, decision["decision_id"], "store-credit", "c1", **body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", field]
    assert shopify.credits == []


# --- Refusals ------------------------------------------------------------------------------


async def test_an_amazon_decision_takes_no_action_and_sends_nothing(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    decision = await decide(
        live, agent, order_ref="113-4567890-1234567", reason="damaged", as_of="2026-12-03T15:00:00Z"
    )
    for kind in ("refund", "store-credit"):
        response = await act(live, agent, decision["decision_id"], kind, f"a-{kind}")
        assert response.status_code == 409
        assert response.json()["code"] == "action_not_allowed"
    assert sum(shopify.calls.values()) == 0
    assert await stored_actions(live, agent, decision["decision_id"]) == []


async def test_a_fee_above_the_policy_and_a_missing_key_are_refused(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    decision = await decide(live, agent)
    too_high = await act(live, agent, decision["decision_id"], "refund", "k1", restocking_fee_percent="20")
    no_key = await act(live, agent, decision["decision_id"], "refund", None)
    assert (too_high.status_code, too_high.json()["code"]) == (422, "validation_error")
    assert (no_key.status_code, no_key.json()["code"]) == (422, "validation_error")
    assert no_key.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert shopify.calls["RefundCreate"] == 0


async def test_the_act_scope_is_required(
    live: httpx.AsyncClient, make_key: MakeKey, shopify: FakeShopify
) -> None:
    router_only = await make_key(Scope.route)
    decision = await decide(live, router_only)
    response = await act(live, router_only, decision["decision_id"], "refund", "k1")
    assert response.status_code == 403


async def test_a_sandbox_decision_takes_no_action(client: httpx.AsyncClient, agent: dict[str, str]) -> None:
    decision = await decide(client, agent)
    assert decision["sandbox"] is True
    response = await act(client, agent, decision["decision_id"], "refund", "k1")
    assert (response.status_code, response.json()["code"]) == (409, "action_not_allowed")


async def test_a_nul_in_a_refund_note_is_refused_and_nothing_is_sent(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify
) -> None:
    decision = await decide(live, agent)
    calls = sum(shopify.calls.values())

    response = await act(live, agent, decision["decision_id"], "refund", "k1", note="Cracked\u0000 lid")

    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    assert response.json()["errors"][0]["type"] == "nul_character"
    assert sum(shopify.calls.values()) == calls  # nothing sent, nothing even read
    assert await stored_actions(live, agent, decision["decision_id"]) == []
