"""ORDER_CHANGE notifications read from a local SQS-compatible server (moto's server mode, over HTTP)
into the real database: a change marks the order stale and the message goes only after the commit;
repeats and late arrivals change nothing; foreign, other and malformed messages are counted and
dropped without touching the mirror; a message that keeps failing is kept aside; SQS being away is
waited out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from app.db import mirror as rows
from app.db.database import Database
from app.db.tables import KeptNotification
from app.runtime import Runtime
from app.services import order_notifications
from app.services.mirror import SellerAccount
from app.services.order_notifications import OrderNotifications, order_change_schema
from tests.connectors.amazon_standin import AmazonStandIn
from tests.mirror_builders import account_of, live_channel
from tests.sqs_server import (
    EXAMPLE,
    client_factory,
    free_port,
    messages_left,
    order_change,
    send,
)
from tests.vendor import VENDOR

ORDER = "113-0000001-0000001"
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def standin() -> Iterator[AmazonStandIn]:
    with AmazonStandIn() as server:  # never called: the account's credentials only need an address
        yield server


@pytest.fixture
def account(standin: AmazonStandIn) -> SellerAccount:
    return account_of(live_channel(standin))


@pytest.fixture
def database(runtime: Runtime) -> Database:
    return runtime.database


def consumer(database: Database, endpoint: str, queue: str, account: SellerAccount) -> OrderNotifications:
    return OrderNotifications(
        database, queue, [account], client_factory(endpoint, queue), max_receives=3, wait_seconds=1
    )


async def hold_order(database: Database, account: SellerAccount, updated: datetime) -> None:
    copy = rows.OrderCopy(ORDER, "amazon_us", {"marker": "held"}, T0, updated)
    async with database.transaction() as session:
        await rows.hold(session, account.key, [copy], updated)


async def held(database: Database, account: SellerAccount) -> rows.Held | None:
    async with database.reading() as session:
        return await rows.find(session, account.key, ORDER)


async def handle_all(notifications: OrderNotifications) -> list[str]:
    """Receive and handle until the queue answers nothing."""
    outcomes: list[str] = []
    async with notifications.open_client() as client:
        while messages := await notifications.receive(client):
            for message in messages:
                outcomes.append(await notifications.handle(client, message))
    return outcomes


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("returns_router_amazon_notifications_total", {"outcome": outcome}) or 0.0


def test_amazon_s_example_is_valid_against_the_schema_shipped_in_the_package() -> None:
    assert not list(order_change_schema().iter_errors(EXAMPLE))


@pytest.mark.parametrize("name", ["OrderChangeNotification.json", "LICENSE", "NOTICE"])
def test_the_schema_in_the_package_is_the_vendored_one_with_its_licence(name: str) -> None:
    packaged = Path(order_notifications.__file__).parents[1] / "connectors" / "amazon_schemas" / name
    assert packaged.read_bytes() == (VENDOR / "amazon-sp-api" / name).read_bytes()


async def test_a_change_marks_the_order_stale_and_the_message_goes_after_the_commit(
    database: Database,
    sqs_endpoint: str,
    queue_url: str,
    account: SellerAccount,
) -> None:
    await hold_order(database, account, T0)
    await send(sqs_endpoint, queue_url, order_change(ORDER, T0 + timedelta(hours=1)))
    before = counted("marked_stale")

    assert await handle_all(consumer(database, sqs_endpoint, queue_url, account)) == ["marked_stale"]

    found = await held(database, account)
    assert found is not None
    assert (found.stale, found.changed_at) == (True, T0 + timedelta(hours=1))
    assert await messages_left(sqs_endpoint, queue_url) == 0
    assert counted("marked_stale") == before + 1


async def test_repeated_and_late_notifications_change_nothing(
    database: Database,
    sqs_endpoint: str,
    queue_url: str,
    account: SellerAccount,
) -> None:
    await hold_order(database, account, T0)
    newest = order_change(ORDER, T0 + timedelta(hours=2))
    notifications = consumer(database, sqs_endpoint, queue_url, account)
    await send(sqs_endpoint, queue_url, newest)
    assert await handle_all(notifications) == ["marked_stale"]
    await send(sqs_endpoint, queue_url, newest)
    await send(sqs_endpoint, queue_url, order_change(ORDER, T0 + timedelta(hours=1)))
    assert await handle_all(notifications) == ["duplicate", "duplicate"]
    found = await held(database, account)
    assert found is not None
    assert found.changed_at == T0 + timedelta(hours=2)
    # A change the copy held already has is no reason to call getOrder.
    await hold_order(database, account, T0 + timedelta(hours=3))
    await send(sqs_endpoint, queue_url, order_change(ORDER, T0 + timedelta(hours=2, minutes=30)))
    assert await handle_all(notifications) == ["already_current"]
    assert await messages_left(sqs_endpoint, queue_url) == 0


def _without_summary() -> dict[str, Any]:
    message = order_change(ORDER, T0)
    del message["Payload"]["OrderChangeNotification"]["Summary"]
    return message


def _another_type() -> dict[str, Any]:
    message = order_change(ORDER, T0)
    message["NotificationType"] = "ANY_OFFER_CHANGED"
    return message


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (lambda: order_change(ORDER, T0, seller_id="A1OTHERSELLER00"), "foreign_seller"),
        (_another_type, "other_type"),
        (lambda: "this is not JSON", "malformed"),
        (_without_summary, "malformed"),
        (lambda: order_change("not-an-order", T0), "malformed"),
        (lambda: order_change(ORDER, None, event_time="yesterday"), "malformed"),
    ],
    ids=["another seller", "another type", "not JSON", "not the schema", "no order id", "no time"],
)
async def test_foreign_other_and_malformed_messages_are_counted_and_dropped_without_touching_the_mirror(
    database: Database,
    sqs_endpoint: str,
    queue_url: str,
    account: SellerAccount,
    body: Any,
    outcome: str,
) -> None:
    await hold_order(database, account, T0)
    await send(sqs_endpoint, queue_url, body())
    before = counted(outcome)

    assert await handle_all(consumer(database, sqs_endpoint, queue_url, account)) == [outcome]

    found = await held(database, account)
    assert found is not None
    assert (found.stale, found.changed_at) == (False, None)
    assert await messages_left(sqs_endpoint, queue_url) == 0
    assert counted(outcome) == before + 1


async def test_a_message_that_keeps_failing_is_kept_aside_without_the_buyer_s_postal_code(
    database: Database,
    sqs_endpoint: str,
    queue_url: str,
    account: SellerAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> bool | None:
        raise RuntimeError("a bug the message trips on")

    monkeypatch.setattr(order_notifications.rows, "note_change", broken)
    await send(sqs_endpoint, queue_url, order_change(ORDER, T0))
    before = counted("kept_aside")

    # Three receipts (the queue gives it back at once): two failures, then it is kept aside.
    assert await handle_all(consumer(database, sqs_endpoint, queue_url, account)) == [
        "failed",
        "failed",
        "kept_aside",
    ]

    assert await messages_left(sqs_endpoint, queue_url) == 0
    assert counted("kept_aside") == before + 1
    async with database.reading() as session:
        kept = (await session.scalars(select(KeptNotification))).one()
    assert (kept.order_id, kept.account, kept.receive_count) == (ORDER, account.key, 3)
    assert "a bug the message trips on" in kept.error
    assert kept.body is not None
    assert kept.body["Payload"]["OrderChangeNotification"]["AmazonOrderId"] == ORDER
    assert "DestinationPostalCode" not in json.dumps(kept.body)
    assert await held(database, account) is None


async def test_the_consumer_long_polls_until_stopped_and_waits_out_an_sqs_outage(
    database: Database,
    sqs_endpoint: str,
    queue_url: str,
    account: SellerAccount,
) -> None:
    await hold_order(database, account, T0)
    stop = asyncio.Event()
    running = asyncio.create_task(consumer(database, sqs_endpoint, queue_url, account).run(stop))
    await send(sqs_endpoint, queue_url, order_change(ORDER, T0 + timedelta(hours=1)))
    for _ in range(200):  # until the worker has read it (bounded: 20 s at most)
        found = await held(database, account)
        if found is not None and found.stale:
            break
        await asyncio.sleep(0.1)
    assert found is not None
    assert found.stale
    stop.set()
    await asyncio.wait_for(running, 10)

    # No SQS at that address: every poll fails, is counted, and the loop still stops when asked.
    failures = REGISTRY.get_sample_value("returns_router_amazon_notification_receive_failures_total") or 0.0
    dead = f"http://127.0.0.1:{_closed_port()}"
    stop = asyncio.Event()
    running = asyncio.create_task(consumer(database, dead, queue_url, account).run(stop))
    for _ in range(300):  # bounded: 30 s at most, for the client's own retries under load
        now = REGISTRY.get_sample_value("returns_router_amazon_notification_receive_failures_total") or 0.0
        if now > failures:
            break
        await asyncio.sleep(0.1)
    assert now > failures
    stop.set()
    await asyncio.wait_for(running, 10)


def _closed_port() -> int:
    return free_port()  # nothing listens there once the probe is closed
