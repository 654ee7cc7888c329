"""`POST /v1/returns/route` with the Amazon order mirror: the order comes from the mirror when it holds a
current copy (and the explanation says so), from getOrder otherwise, and the decision is the same
either way. The SP-API is a local stand-in, ORDER_CHANGE a local SQS-compatible server."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from app.connectors.amazon_search import OrderSearch
from app.connectors.ratelimit import LocalBuckets
from app.db.tables import MirroredOrder
from app.db.tables import MirrorSync as MirrorSyncRow
from app.main import create_app
from app.runtime import Runtime
from app.services.api_keys import Scope
from app.services.mirror import record_gauges, seller_accounts
from app.services.mirror_sync import MirrorSync, Step
from app.services.order_notifications import OrderNotifications
from app.settings import Settings
from tests.conftest import MakeKey
from tests.connectors.amazon_standin import AmazonStandIn, orders_like
from tests.connectors.conftest import AMAZON_FIXTURES
from tests.connectors.test_published_samples import AMAZON_ORDERS
from tests.routers.test_returns_live import live_settings
from tests.sqs_server import client_factory, free_port, order_change, send

NOW = datetime.now(UTC)
AS_OF = "2026-12-03T15:00:00Z"
SYNCED = re.compile(r"^order from mirror, synced \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SANDBOX = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in AMAZON_FIXTURES}
PUBLISHED = {order_id: {"order": order} for order_id, order in AMAZON_ORDERS.items()}
KETTLE = "113-4567890-1234567"
# Orders of a marketplace the one channel (Amazon.com) does not sell on: the mirror keeps none of them,
# and getOrder's answer is refused as unsupported_marketplace.
FOREIGN = {
    order_id
    for order_id, body in {**SANDBOX, **PUBLISHED}.items()
    if body["order"]["salesChannel"]["marketplaceId"] != "ATVPDKIKX0DER"
}


@pytest.fixture
def standin() -> Iterator[AmazonStandIn]:
    made = orders_like(SANDBOX[KETTLE], 20, now=NOW, prefix="120")
    with AmazonStandIn({**SANDBOX, **PUBLISHED, **made}) as server:
        yield server


def mirror_settings(settings: Settings, standin: AmazonStandIn, **overrides: Any) -> Settings:
    # Amazon's published samples are from 2024: a window of two years holds them.
    return live_settings(
        settings,
        standin,
        channel_amazon_us_mirror_days=730,
        channel_amazon_us_seller_id="A3TH9S8BH6GOGM",
        **overrides,
    )


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as client:
            yield app, client


@pytest.fixture
async def mirrored(
    settings: Settings, standin: AmazonStandIn
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serving(mirror_settings(settings, standin)) as served:
        yield served


async def backfill(runtime: Runtime) -> None:
    """What `python -m app worker` does first: the whole window, page by page."""
    (account,) = seller_accounts(runtime.channels)
    search = OrderSearch.build(account.channels, runtime.http, buckets=LocalBuckets())
    sync = MirrorSync(runtime.database, account, search, every=300)
    while await sync.step() is not Step.done:
        pass


async def route(client: httpx.AsyncClient, headers: dict[str, str], order_id: str) -> httpx.Response:
    body = {"order_ref": order_id, "reason": "damaged", "ticket_id": "T-1", "as_of": AS_OF}
    return await client.post("/v1/returns/route", json=body, headers=headers)


def comparable(response: httpx.Response) -> tuple[int, Any]:
    """The answer without what differs between two decisions anyway, and the mirror's own step."""
    body = response.json()
    if response.status_code == 201:
        body = {key: value for key, value in body.items() if key not in ("decision_id", "created_at")}
        body["explanation"] = [step for step in body["explanation"] if step["rule"] != "order.source"]
    return response.status_code, body


def from_mirror(response: httpx.Response) -> bool:
    first = response.json()["explanation"][0]
    return first["rule"] == "order.source" and SYNCED.match(first["result"]) is not None


async def test_every_order_is_decided_the_same_from_the_mirror_and_from_getorder(
    settings: Settings,
    standin: AmazonStandIn,
    mirrored: tuple[FastAPI, httpx.AsyncClient],
    make_key: MakeKey,
) -> None:
    app, client = mirrored
    await backfill(app.state.runtime)
    headers = await make_key(Scope.route)
    order_ids = sorted({*SANDBOX, *PUBLISHED})

    with_mirror = {order_id: await route(client, headers, order_id) for order_id in order_ids}
    # Not one getOrder but for the other marketplaces' orders: the mirror held every Amazon.com order.
    assert sorted(order_id for _, order_id in standin.calls) == sorted(FOREIGN)
    assert FOREIGN
    async with serving(mirror_settings(settings, standin, mirror_max_age_seconds=0)) as (_, plain):
        without = {order_id: await route(plain, headers, order_id) for order_id in order_ids}
    assert sorted(order_id for _, order_id in standin.calls) == sorted([*FOREIGN, *order_ids])

    for order_id in order_ids:
        assert comparable(with_mirror[order_id]) == comparable(without[order_id]), order_id
        if with_mirror[order_id].status_code == 201:
            assert from_mirror(with_mirror[order_id]), order_id
            assert not from_mirror(without[order_id]), order_id
    assert sum(answer.status_code == 201 for answer in with_mirror.values()) >= len(SANDBOX)
    for order_id in FOREIGN:
        assert with_mirror[order_id].json()["code"] == "unsupported_marketplace", order_id


async def test_an_order_the_mirror_does_not_hold_is_fetched_once_then_answered_from_the_mirror(
    mirrored: tuple[FastAPI, httpx.AsyncClient], standin: AmazonStandIn, make_key: MakeKey
) -> None:
    _, client = mirrored
    headers = await make_key(Scope.route)
    first = await route(client, headers, KETTLE)
    assert first.status_code == 201
    assert not from_mirror(first)
    assert [order_id for _, order_id in standin.calls] == [KETTLE]

    again = await route(client, headers, KETTLE)
    assert from_mirror(again)
    assert comparable(again) == comparable(first)
    assert len(standin.calls) == 1


async def test_an_order_change_is_reflected_in_the_next_decision(
    mirrored: tuple[FastAPI, httpx.AsyncClient],
    standin: AmazonStandIn,
    make_key: MakeKey,
    sqs_endpoint: str,
    queue_url: str,
) -> None:
    app, client = mirrored
    runtime: Runtime = app.state.runtime
    await backfill(runtime)
    headers = await make_key(Scope.route)
    order_id = "120-0000003-0000001"
    shipped = await route(client, headers, order_id)
    assert from_mirror(shipped)
    assert shipped.json()["order"]["shipped_at"] is not None

    def cancel(order: dict[str, Any]) -> None:
        order["fulfillment"]["fulfillmentStatus"] = "CANCELLED"
        order["packages"] = []

    changed_at = standin.change(order_id, cancel)
    await send(sqs_endpoint, queue_url, order_change(order_id, changed_at, status="Canceled"))
    notifications = OrderNotifications(
        runtime.database,
        queue_url,
        seller_accounts(runtime.channels),
        client_factory(sqs_endpoint, queue_url),
        wait_seconds=1,
    )
    async with notifications.open_client() as sqs:
        (message,) = await notifications.receive(sqs)
        assert await notifications.handle(sqs, message) == "marked_stale"

    cancelled = await route(client, headers, order_id)
    assert cancelled.status_code == 201
    assert not from_mirror(cancelled)
    assert [called for _, called in standin.calls] == [order_id]
    assert cancelled.json()["order"]["shipped_at"] is None
    assert cancelled.json()["template"]["id"] != shipped.json()["template"]["id"]
    # getOrder's answer is the mirror's copy now: the next decision needs no call.
    again = await route(client, headers, order_id)
    assert from_mirror(again)
    assert comparable(again) == comparable(cancelled)
    assert len(standin.calls) == 1


async def test_lookups_go_on_while_sqs_is_away(
    mirrored: tuple[FastAPI, httpx.AsyncClient], standin: AmazonStandIn, make_key: MakeKey, queue_url: str
) -> None:
    app, client = mirrored
    runtime: Runtime = app.state.runtime
    await backfill(runtime)
    dead = f"http://127.0.0.1:{free_port()}"
    stop = asyncio.Event()
    notifications = OrderNotifications(
        runtime.database, queue_url, seller_accounts(runtime.channels), client_factory(dead, queue_url)
    )
    consuming = asyncio.create_task(notifications.run(stop))
    try:
        headers = await make_key(Scope.route)
        held = await route(client, headers, "120-0000001-0000001")
        unknown = await route(client, headers, "113-9999999-0000001")
    finally:
        stop.set()
        await asyncio.wait_for(consuming, 30)
    assert held.status_code == 201
    assert from_mirror(held)
    assert unknown.status_code == 404  # getOrder was asked, and answered
    assert [order_id for _, order_id in standin.calls] == ["113-9999999-0000001"]


async def test_metrics_show_what_the_mirror_holds_and_answered(
    mirrored: tuple[FastAPI, httpx.AsyncClient], standin: AmazonStandIn, make_key: MakeKey
) -> None:
    app, client = mirrored
    runtime: Runtime = app.state.runtime
    await backfill(runtime)
    await record_gauges(runtime.database, seller_accounts(runtime.channels), datetime.now(UTC))
    await route(client, await make_key(Scope.route), KETTLE)
    text = (await client.get("/metrics")).text
    assert 'returns_router_amazon_mirror_lookups_total{account="amazon_us",answer="mirror"}' in text
    search_calls = 'returns_router_upstream_calls_total{outcome="ok",upstream="amazon_us.search_orders"}'
    assert search_calls in text
    held = re.search(r'returns_router_amazon_mirror_orders\{account="amazon_us",state="held"\} (\S+)', text)
    assert held is not None
    assert float(held.group(1)) == len(standin.orders) - len(FOREIGN)
    # Counted, not kept: the other marketplaces' orders (the count grows over the process's tests).
    skipped = 'returns_router_amazon_mirror_orders_skipped_total{account="amazon_us",reason="marketplace"}'
    assert skipped in text
    assert "returns_router_amazon_mirror_last_sync_timestamp_seconds" in text
    assert (await client.get("/readyz")).status_code == 200


async def test_a_copy_no_pass_has_confirmed_for_too_long_is_not_used(
    settings: Settings, standin: AmazonStandIn, make_key: MakeKey
) -> None:
    async with serving(mirror_settings(settings, standin, mirror_max_age_seconds=60)) as (app, client):
        runtime: Runtime = app.state.runtime
        await backfill(runtime)
        headers = await make_key(Scope.route)
        assert from_mirror(await route(client, headers, KETTLE))
        # The worker stopped an hour ago: nothing has confirmed the copy since.
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        async with runtime.database.transaction() as session:
            await session.execute(update(MirroredOrder).values(fetched_at=an_hour_ago))
            await session.execute(update(MirrorSyncRow).values(confirmed_through=an_hour_ago))
        later = await route(client, headers, KETTLE)
    assert later.status_code == 201
    assert not from_mirror(later)
    assert [order_id for _, order_id in standin.calls] == [KETTLE]
