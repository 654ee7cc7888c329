"""The live Shopify connector against respx: throttling, retries, errors and each kind of reference."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import graphql
import httpx
import pytest
import respx
from graphql.validation import NoDeprecatedCustomRule
from pydantic import SecretStr

from app.channels import ShopifyChannel
from app.connectors import shopify_actions, shopify_returns
from app.connectors.shopify import ShopifyConnector
from app.connectors.shopify_throttle import CostThrottle
from app.domain import Money
from app.errors import OrderNotFound, ShopifyRejected, UpstreamAuthFailed, UpstreamUnavailable
from tests.conftest import Metrics
from tests.fakes.shopify_admin import ADMIN_URL, TOKEN, FakeShopify

Node = Callable[[str], dict[str, Any]]
DOCUMENTS = {
    name: getattr(module, name)
    for module in (shopify_actions, shopify_returns)
    for name in dir(module)
    if name.endswith(("_QUERY", "_MUTATION"))
}


@pytest.fixture
def channel(shopify_channel: ShopifyChannel) -> ShopifyChannel:
    return ShopifyChannel(
        key=shopify_channel.key,
        timezone=shopify_channel.timezone,
        currency="CAD",
        shop_domain=None,
        api_version="2026-10",
        admin_url_override=ADMIN_URL,
        access_token=SecretStr(TOKEN),
    )


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient() as client:
        yield client


def answer(data: dict[str, Any], *, available: float = 1900, cost: int = 12) -> httpx.Response:
    throttle = {"maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": 100.0}
    return httpx.Response(
        200,
        json={"data": data, "extensions": {"cost": {"requestedQueryCost": cost, "throttleStatus": throttle}}},
    )


def sent(call: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(call.request.content)
    return body


# --- The documents ---------------------------------------------------------------------


@pytest.mark.parametrize("document", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_action_document_validates_against_the_schema(
    shopify_schema: graphql.GraphQLSchema, document: str
) -> None:
    rules = [*graphql.specified_rules, NoDeprecatedCustomRule]
    assert graphql.validate(shopify_schema, graphql.parse(document), rules) == []


def test_refund_create_carries_the_idempotency_key() -> None:
    assert "refundCreate(input: $input) @idempotent(key: $key)" in shopify_actions.REFUND_CREATE_MUTATION


def test_the_customer_is_read_as_an_id_only() -> None:
    assert "customer { id }" in shopify_actions.ORDER_CUSTOMER_QUERY


# --- References ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_ref", "operations"),
    [
        ("gid://shopify/Order/450789469", ["OrderById"]),
        ("450789469", ["OrderByName", "OrderById"]),  # a bare number: a name first, then an id
        ("#1001", ["OrderByName"]),
        ("1001", ["OrderByName"]),
    ],
)
async def test_each_kind_of_reference(
    channel: ShopifyChannel, http: httpx.AsyncClient, order_ref: str, operations: list[str]
) -> None:
    fake = FakeShopify.with_fixtures()
    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(ADMIN_URL).mock(side_effect=fake.handle)
        order = await ShopifyConnector(channel, http).resolve_order(order_ref)
    assert order.order_ref == "#1001"
    assert order.order_id == "gid://shopify/Order/450789469"
    assert order.sandbox is False
    assert list(fake.calls.elements()) == operations


async def test_an_unknown_order_is_not_found(channel: ShopifyChannel, http: httpx.AsyncClient) -> None:
    fake = FakeShopify.with_fixtures()
    with respx.mock() as mock:
        mock.post(ADMIN_URL).mock(side_effect=fake.handle)
        with pytest.raises(OrderNotFound):
            await ShopifyConnector(channel, http).resolve_order("999999")
    assert fake.calls == {"OrderByName": 1, "OrderById": 1}


# --- Throttling, retries and errors ------------------------------------------------------


async def test_throttled_on_200_and_on_429_is_retried(
    channel: ShopifyChannel, http: httpx.AsyncClient
) -> None:
    fake = FakeShopify.with_fixtures()
    fake.before["OrderById"] = [FakeShopify.throttled(200), FakeShopify.throttled(429)]
    with respx.mock() as mock:
        mock.post(ADMIN_URL).mock(side_effect=fake.handle)
        order = await ShopifyConnector(channel, http).resolve_order("gid://shopify/Order/450789469")
    assert order.order_ref == "#1001"
    assert fake.calls["OrderById"] == 3


async def test_calls_and_retries_are_counted_in_metrics_under_a_fixed_label(
    channel: ShopifyChannel, http: httpx.AsyncClient, metrics: Metrics
) -> None:
    fake = FakeShopify.with_fixtures()
    fake.before["OrderById"] = [FakeShopify.throttled(429)]
    with respx.mock() as mock:
        mock.post(ADMIN_URL).mock(side_effect=fake.handle)
        await ShopifyConnector(channel, http).resolve_order("gid://shopify/Order/450789469")

    label = {"upstream": "shopify_ca.admin_graphql"}
    assert metrics.value("returns_router_upstream_calls_total", **label, outcome="throttled") == 1
    assert metrics.value("returns_router_upstream_calls_total", **label, outcome="ok") == 1
    assert metrics.value("returns_router_upstream_retries_total", **label, code="upstream_rate_limited") == 1


async def test_5xx_and_timeouts_are_retried_on_reads(
    channel: ShopifyChannel, http: httpx.AsyncClient
) -> None:
    fake = FakeShopify.with_fixtures()
    fake.before["OrderById"] = [httpx.Response(502)]
    fake.timeouts_after["OrderById"] = 1
    with respx.mock() as mock:
        mock.post(ADMIN_URL).mock(side_effect=fake.handle)
        await ShopifyConnector(channel, http).resolve_order("gid://shopify/Order/450789469")
    assert fake.calls["OrderById"] == 3


async def test_the_throttle_waits_for_what_the_bucket_cannot_afford() -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    throttle = CostThrottle(clock=lambda: now[0], sleep=sleep)
    extensions = {
        "cost": {
            "requestedQueryCost": 250,
            "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 50, "restoreRate": 50.0},
        }
    }
    throttle.observe("SuggestedRefund", extensions)
    await throttle.acquire("SuggestedRefund")
    assert waits == [pytest.approx(4.0)]  # (250 - 50) points at 50 a second
    now[0] += 1.0
    await throttle.acquire("OrderById")  # 50 points (the default) restored in that second
    assert len(waits) == 1


async def test_the_client_waits_instead_of_collecting_throttled_errors(
    channel: ShopifyChannel, http: httpx.AsyncClient, shopify_node: Node
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    connector = ShopifyConnector(channel, http)
    connector.admin.throttle = CostThrottle(sleep=sleep)
    with respx.mock() as mock:
        route = mock.post(ADMIN_URL).mock(
            return_value=answer({"order": shopify_node("450789469")}, available=0, cost=300)
        )
        await connector.resolve_order("gid://shopify/Order/450789469")
        await connector.resolve_order("gid://shopify/Order/450789469")
    assert route.call_count == 2
    assert len(waits) == 1
    assert 2.9 < waits[0] <= 3.0


async def test_user_errors_are_a_clear_rejection(channel: ShopifyChannel, http: httpx.AsyncClient) -> None:
    data = {
        "refundCreate": {
            "refund": None,
            "userErrors": [{"field": ["transactions", "0"], "message": "Too much"}],
        }
    }
    with respx.mock() as mock:
        mock.post(ADMIN_URL).mock(return_value=answer(data))
        with pytest.raises(ShopifyRejected) as caught:
            await ShopifyConnector(channel, http).create_refund(
                "k", "gid://shopify/Order/1", [], [], note="", notify=False
            )
    assert caught.value.status == 422
    assert caught.value.errors == [{"loc": ["transactions", "0"], "msg": "Too much", "type": "user_error"}]


async def test_a_missing_scope_is_an_auth_failure(channel: ShopifyChannel, http: httpx.AsyncClient) -> None:
    denied = {"errors": [{"message": "Access denied for refunds", "extensions": {"code": "ACCESS_DENIED"}}]}
    with respx.mock() as mock:
        mock.post(ADMIN_URL).mock(return_value=httpx.Response(200, json=denied))
        with pytest.raises(UpstreamAuthFailed) as caught:
            await ShopifyConnector(channel, http).order_refunds("gid://shopify/Order/1")
    assert "write_orders" in caught.value.detail
    assert caught.value.status == 502


async def test_a_mutation_without_a_key_is_not_resent_after_a_5xx(
    channel: ShopifyChannel, http: httpx.AsyncClient
) -> None:
    fake = FakeShopify.with_fixtures()
    fake.before["StoreCreditCredit"] = [FakeShopify.throttled(429), httpx.Response(503)]
    amount = Money(amount=Decimal("10.00"), currency="CAD")
    with respx.mock() as mock:
        mock.post(ADMIN_URL).mock(side_effect=fake.handle)
        with pytest.raises(UpstreamUnavailable):
            await ShopifyConnector(channel, http).credit_store_credit("gid://shopify/Customer/1", amount)
    # Throttled: it never ran, so it was sent again; the 503 may have run: it was not.
    assert fake.calls["StoreCreditCredit"] == 2
    assert fake.credits == []


async def test_refund_create_is_retried_under_the_same_key(
    channel: ShopifyChannel, http: httpx.AsyncClient
) -> None:
    fake = FakeShopify.with_fixtures()
    fake.timeouts_after["RefundCreate"] = 2  # refunded, then the answer lost, twice
    connector = ShopifyConnector(channel, http)
    order = "gid://shopify/Order/450789469"
    with respx.mock() as mock:
        route = mock.post(ADMIN_URL).mock(side_effect=fake.handle)
        suggested = await connector.suggested_refund(order, [("gid://shopify/LineItem/1071823172", 1)])
        refund = await connector.create_refund(
            "action-1",
            order,
            [("gid://shopify/LineItem/1071823172", 1)],
            suggested.transactions,
            note="n",
            notify=False,
        )
    assert suggested.amount == Money(amount=Decimal("44.07"), currency="CAD")  # 39.00 and 13% tax
    keys = {
        sent(call)["variables"]["key"]
        for call in route.calls
        if sent(call)["operationName"] == "RefundCreate"
    }
    assert keys == {"action-1"}
    assert fake.calls["RefundCreate"] == 3
    assert [r["id"] for r in fake.refunds] == [refund.refund_id]
