"""Every webhook payload Shopify publishes (and the two hand-made ones, labelled), delivered as Shopify
delivers it to `/webhooks/shopify` and processed by the worker: each is routed or applied, none is
parked for its shape. The payloads are in `tests/fixtures/published/shopify/` (see SOURCES.md there).

Shopify's samples name orders the sandbox does not hold (4783296544821): the fake Admin endpoint is
given that order here, a copy of sandbox order #1001 under the sample's id, and the Return the
`returns/request` sample names (its webhook lists no lines; Shopify's Return does).
"""

from __future__ import annotations

import copy
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.db.tables import ShopifyRefund
from app.domain import Money, Reason
from app.runtime import Runtime
from app.services.webhooks.return_requested import reason_of
from app.services.webhooks.worker import Worker
from tests.connectors.conftest import PUBLISHED
from tests.fakes.shopify_admin import FakeShopify
from tests.services.webhooks.test_status_events import exchange, shown
from tests.services.webhooks.test_worker import all_decisions, drain, event, receive

WEBHOOKS = PUBLISHED / "shopify" / "webhooks"
HANDMADE = PUBLISHED / "shopify" / "handmade"
SAMPLE_ORDER = "gid://shopify/Order/4783296544821"
SAMPLE_RETURN = "gid://shopify/Return/123134564567890"
# Each topic in the order a Return goes through them, so none is older than one applied before it.
TOPICS = (
    ("returns_request.json", "returns/request"),
    ("returns_approve.json", "returns/approve"),
    ("returns_update.json", "returns/update"),
    ("returns_decline.json", "returns/decline"),
    ("returns_reopen.json", "returns/reopen"),
    ("returns_cancel.json", "returns/cancel"),
    ("returns_close.json", "returns/close"),
    ("refunds_create.json", "refunds/create"),
)


def _json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _sample_order(shopify: FakeShopify) -> str:
    """Sandbox order #1001 under the id Shopify's samples use; returns the line the Return asks for."""
    node = copy.deepcopy(shopify.orders["gid://shopify/Order/450789469"])
    node["id"], node["name"] = SAMPLE_ORDER, "#4783"
    for number, line in enumerate(node["lineItems"]["nodes"]):
        line["id"] = f"gid://shopify/LineItem/47832965448{number}"
    shopify.orders[SAMPLE_ORDER] = node
    line_id: str = node["lineItems"]["nodes"][0]["id"]
    return line_id


def test_every_published_webhook_sample_is_delivered_here() -> None:
    assert {name for name, _topic in TOPICS} == {path.name for path in WEBHOOKS.glob("*.json")}


async def test_every_published_sample_is_routed_or_applied(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    line = _sample_order(shopify)
    shopify.requested[SAMPLE_RETURN] = {
        "order_id": SAMPLE_ORDER,
        "lines": [{"quantity": 1, "lineItem": line, "reason": "damaged-or-defective"}],
    }
    ids = {}
    for minute, (name, topic) in enumerate(TOPICS):
        ids[topic] = await receive(
            live, _json(WEBHOOKS / name), topic=topic, triggered_at=f"2026-11-20T15:{minute:02d}:00Z"
        )
    await drain(Worker(live_runtime.database, live_runtime.handlers))

    events = {topic: await event(live_runtime.database, webhook_id) for topic, webhook_id in ids.items()}
    assert {topic: found.status for topic, found in events.items()} == dict.fromkeys(ids, "processed")
    outcomes = {topic: found.outcome for topic, found in events.items()}

    # returns/request lists no lines: they are read back from the Return, and the decision says so.
    [decision] = (await live.get("/v1/decisions", headers=agent)).json()["items"]
    assert outcomes["returns/request"] == f"decision {decision['decision_id']}"
    assert decision["order"]["order_ref"] == "#4783"
    assert decision["reason"] == "defective"
    assert decision["policy"]["returned_value"] == {"amount": "39.00", "currency": "CAD"}
    assert decision["explanation"][0] == {
        "rule": "shopify.return_lines",
        "result": "the returns/request lists no lines: 1 read from the Return in Shopify",
        "policy": None,
    }
    assert shopify.calls["ReturnLines"] == 1
    # The status events find their Return; the update says what it removed.
    assert outcomes["returns/approve"] == f"return {SAMPLE_RETURN}: status open"
    assert outcomes["returns/update"] == (
        f"return {SAMPLE_RETURN}: status unchanged; "
        "2 unit(s) of return line gid://shopify/ReturnLineItem/987654321 removed"
    )
    assert outcomes["returns/decline"] == f"return {SAMPLE_RETURN}: status declined"
    assert outcomes["returns/close"] == f"return {SAMPLE_RETURN}: status closed"
    assert [r["status"] for r in (await shown(live, agent, decision["decision_id"]))["shopify_returns"]] == [
        "closed"
    ]
    # refunds/create: both transactions say `"currency": null`; the refund's lines say USD.
    assert outcomes["refunds/create"] == (
        "refund gid://shopify/Refund/890088186047892319 of 85.00 USD recorded, made outside the service"
    )


async def test_a_return_of_a_custom_sale_line_is_matched_by_its_line_item(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    # Hand-made (see SOURCES.md): a point-of-sale order whose custom sale line has no SKU, no product.
    node = _json(HANDMADE / "order-pos-custom-sale.json")
    shopify.orders[node["id"]] = node
    webhook_id = await receive(
        live,
        _json(HANDMADE / "returns_request-pos-custom-sale.json"),
        triggered_at="2026-11-20T15:00:00Z",
    )
    await drain(Worker(live_runtime.database, live_runtime.handlers))

    assert (await event(live_runtime.database, webhook_id)).status == "processed"
    [row] = await all_decisions(live_runtime.database)
    assert row.request["items"] == [{"line_id": "gid://shopify/LineItem/1071823190", "quantity": 1}]
    assert row.answer["policy"]["returned_value"] == {"amount": "43.00", "currency": "CAD"}
    assert row.answer["order"]["lines"][0]["unit_price"] == {"amount": "43.00", "currency": "CAD"}
    # The decision can be acted on: its lines are found by line item too.
    refund = await live.post(
        f"/v1/decisions/{row.id}/actions/refund",
        json={},
        headers={**agent, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert refund.status_code == 201, refund.text
    [made] = shopify.refunds
    assert made["lines"] == [
        {"lineItemId": "gid://shopify/LineItem/1071823190", "quantity": 1, "restockType": "NO_RESTOCK"}
    ]


async def test_on_the_sandbox_a_request_without_lines_is_decided_for_the_whole_order(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    # Derived from the published sample: the sandbox has no order 4783296544821, so it names #1001.
    payload = _json(WEBHOOKS / "returns_request.json")
    payload["order"] = {"admin_graphql_api_id": "gid://shopify/Order/450789469", "id": 450789469}
    webhook_id = await receive(client, payload, triggered_at="2026-11-20T15:00:00Z")
    await drain(Worker(runtime.database, runtime.handlers))

    assert (await event(runtime.database, webhook_id)).status == "processed"
    [row] = await all_decisions(runtime.database)
    assert row.request["items"] is None
    assert row.answer["policy"]["returned_value"] == {"amount": "84.00", "currency": "CAD"}  # both lines
    assert row.answer["explanation"][0]["result"] == (
        "the returns/request lists no lines, and there is no Shopify store to read the Return from "
        "(sandbox): decided for every line of the order"
    )


async def test_an_update_naming_no_order_settles_the_exchange_whose_answer_was_lost(
    live: httpx.AsyncClient, agent: dict[str, str], shopify: FakeShopify, live_runtime: Runtime
) -> None:
    # The Return is created, its answer lost, and the read-back fails too: the exchange waits, not
    # knowing which Return is its own.
    shopify.timeouts_after["ReturnCreate"] = 1
    shopify.before["OrderReturns"] = [httpx.Response(401, json={"errors": "[API] Invalid token"})]
    decision_id, pending = await exchange(live, agent)
    assert pending["state"] == "unknown"
    [created] = shopify.returns
    # Derived from the published sample, which names no order: it is about the Return created.
    payload = _json(WEBHOOKS / "returns_update.json")
    payload["admin_graphql_api_id"] = created["id"]

    webhook_id = await receive(live, payload, topic="returns/update")
    await drain(Worker(live_runtime.database, live_runtime.handlers))

    assert shopify.calls["ReturnLines"] == 1  # the order, found through the Return
    [settled] = (await shown(live, agent, decision_id))["actions"]
    assert (settled["status"], settled["shopify"]["return_id"]) == ("succeeded", created["id"])
    assert (await event(live_runtime.database, webhook_id)).outcome == (
        f"return {created['id']}: status unchanged; "
        "2 unit(s) of return line gid://shopify/ReturnLineItem/987654321 removed; "
        f"exchange {settled['action_id']} succeeded"
    )


async def test_status_events_ask_shopify_nothing_when_no_exchange_waits(
    live: httpx.AsyncClient, shopify: FakeShopify, live_runtime: Runtime
) -> None:
    await receive(live, _json(WEBHOOKS / "returns_decline.json"), topic="returns/decline")
    await drain(Worker(live_runtime.database, live_runtime.handlers))

    assert shopify.calls["ReturnLines"] == 0


@pytest.mark.parametrize("currency", [None, "USD"])
async def test_a_refund_whose_transactions_name_no_currency_takes_its_lines(
    client: httpx.AsyncClient, runtime: Runtime, currency: str | None
) -> None:
    payload = _json(WEBHOOKS / "refunds_create.json")
    for transaction in payload["transactions"]:
        transaction["currency"] = currency
    await receive(client, payload, topic="refunds/create")
    await drain(Worker(runtime.database, runtime.handlers))

    async with runtime.database.reading() as session:
        [refund] = (await session.scalars(select(ShopifyRefund))).all()
    assert refund.amount == Money(amount=Decimal("85.00"), currency="USD")
    # The scraper that copied the sample rounded this id through a float (see SOURCES.md).
    assert refund.order_id == "gid://shopify/Order/820982911946154500"


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("size_too_small", Reason.size_or_fit),  # the webhook's ReturnReason, lower case
        ("unwanted", Reason.no_longer_needed),
        ("defective", Reason.defective),
        ("wrong-item", Reason.wrong_item),  # a reason definition's handle
        ("not-as-described", Reason.not_as_described),
        ("too-tight", Reason.size_or_fit),
        ("arrived-late", Reason.arrived_late),
        ("color-too-bright", Reason.no_longer_needed),
        ("quality", Reason.defective),
        ("missing-parts", Reason.missing_parts),
        ("gift-received-twice", Reason.other),
    ],
)
def test_shopify_reasons_and_reason_handles_map_to_the_contracts(given: str, reason: Reason) -> None:
    assert reason_of(given) is reason
