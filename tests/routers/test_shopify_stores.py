"""Several Shopify stores: webhooks are matched to their store by `X-Shopify-Shop-Domain` and its own
secrets, and an order name found in two stores is ambiguous unless the request names its channel.
Each store is a live channel on a fake Admin endpoint of its own, holding the same sandbox orders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx
from fastapi import FastAPI
from pydantic import SecretStr

from app.main import create_app
from app.runtime import Runtime
from app.services.api_keys import Scope
from app.services.webhooks.worker import Worker
from app.settings import Settings
from tests.conftest import MakeKey
from tests.fakes.shopify_admin import ADMIN_URL, TOKEN, FakeShopify
from tests.services.webhooks.test_worker import all_decisions, drain, event
from tests.webhook_builders import WEBHOOK_SECRET, delivery, return_request_payload

CA_SHOP = "maple-and-thread.myshopify.com"
US_SHOP = "maple-and-thread-us.myshopify.com"
US_ADMIN_URL = f"https://{US_SHOP}/admin/api/2026-10/graphql.json"
US_SECRET = "us-store-webhook-secret"


@pytest.fixture(scope="module")
async def two_stores(settings: Settings) -> AsyncIterator[FastAPI]:
    configured = settings.model_copy(
        update={
            "channel_shopify_ca_shop_domain": CA_SHOP,
            "channel_shopify_ca_admin_url": ADMIN_URL,
            "channel_shopify_ca_access_token": SecretStr(TOKEN),
            "channel_shopify_ca_webhook_secrets": [SecretStr(WEBHOOK_SECRET)],
            "channel_variables": {
                "channel_shopify_us_shop_domain": US_SHOP,
                "channel_shopify_us_access_token": TOKEN,
                "channel_shopify_us_webhook_secrets": US_SECRET,
                "channel_shopify_us_timezone": "America/New_York",
            },
        }
    )
    app = create_app(configured)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def stores() -> Iterator[tuple[FakeShopify, FakeShopify]]:
    ca, us = FakeShopify.with_fixtures(), FakeShopify.with_fixtures()
    with respx.mock(assert_all_called=False) as mock:
        mock.post(ADMIN_URL).mock(side_effect=ca.handle)
        mock.post(US_ADMIN_URL).mock(side_effect=us.handle)
        yield ca, us


@pytest.fixture
async def client(two_stores: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=two_stores)
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as http:
        yield http


@pytest.fixture
def runtime_of_stores(two_stores: FastAPI) -> Runtime:
    runtime: Runtime = two_stores.state.runtime
    return runtime


async def test_a_webhook_is_its_stores_by_domain_and_decided_there(
    client: httpx.AsyncClient,
    runtime_of_stores: Runtime,
    stores: tuple[FakeShopify, FakeShopify],
) -> None:
    ca, us = stores
    body, headers = delivery(return_request_payload(), secret=US_SECRET, shop_domain=US_SHOP)

    response = await client.post("/webhooks/shopify", content=body, headers=headers)
    await drain(Worker(runtime_of_stores.database, runtime_of_stores.handlers))

    assert response.status_code == 200, response.text
    stored = await event(runtime_of_stores.database, headers["X-Shopify-Webhook-Id"])
    assert (stored.channel, stored.status) == ("shopify_us", "processed")
    [decision] = await all_decisions(runtime_of_stores.database)
    assert decision.channel == "shopify_us"
    assert (us.calls["OrderById"], ca.calls["OrderById"]) == (1, 0)


@pytest.mark.parametrize(
    ("secret", "shop"),
    [
        (US_SECRET, CA_SHOP),  # the US store's secret does not sign for the Canadian store
        (WEBHOOK_SECRET, US_SHOP),
        (WEBHOOK_SECRET, "someone-else.myshopify.com"),  # an unknown shop
        (US_SECRET, ""),
    ],
)
async def test_a_delivery_not_signed_by_its_shops_own_secret_is_401(
    client: httpx.AsyncClient, runtime_of_stores: Runtime, secret: str, shop: str
) -> None:
    body, headers = delivery(return_request_payload(), secret=secret, shop_domain=shop)

    response = await client.post("/webhooks/shopify", content=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"


async def test_an_order_name_in_two_stores_is_ambiguous_unless_the_channel_is_named(
    client: httpx.AsyncClient, make_key: MakeKey, stores: tuple[FakeShopify, FakeShopify]
) -> None:
    headers = await make_key(Scope.route)
    body = {"order_ref": "#1001", "reason": "size_or_fit", "as_of": "2026-11-26T12:00:00Z"}

    ambiguous = await client.post("/v1/returns/route", json=body, headers=headers)
    named = await client.post("/v1/returns/route", json={**body, "channel": "shopify_us"}, headers=headers)

    assert ambiguous.status_code == 409
    problem = ambiguous.json()
    assert (problem["code"], problem["channels"]) == ("ambiguous_order_ref", ["shopify_ca", "shopify_us"])
    assert "name the `channel`" in problem["detail"]
    assert (named.status_code, named.json()["channel"]) == (201, "shopify_us")


async def test_an_order_name_in_one_store_is_that_stores(
    client: httpx.AsyncClient, make_key: MakeKey, stores: tuple[FakeShopify, FakeShopify]
) -> None:
    ca, us = stores
    del us.orders["gid://shopify/Order/450789470"]  # #1002 is the Canadian store's alone
    headers = await make_key(Scope.route)
    body = {"order_ref": "1002", "reason": "defective", "as_of": "2026-11-26T12:00:00Z"}

    found = await client.post("/v1/returns/route", json=body, headers=headers)
    nowhere = await client.post("/v1/returns/route", json={**body, "order_ref": "#4242"}, headers=headers)

    assert (found.status_code, found.json()["channel"]) == (201, "shopify_ca")
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, "order_not_found")
    assert "shopify_ca, shopify_us" in nowhere.json()["detail"]


async def test_a_store_that_cannot_answer_makes_the_name_unresolved_rather_than_guessed(
    client: httpx.AsyncClient, make_key: MakeKey, stores: tuple[FakeShopify, FakeShopify]
) -> None:
    ca, us = stores
    us.before["OrderByName"] = [httpx.Response(401, json={"errors": "[API] Invalid API key"})]
    headers = await make_key(Scope.route)
    body = {"order_ref": "#1001", "reason": "size_or_fit", "as_of": "2026-11-26T12:00:00Z"}

    response = await client.post("/v1/returns/route", json=body, headers=headers)

    assert response.status_code == 502
    assert response.json()["code"] == "upstream_auth_failed"
