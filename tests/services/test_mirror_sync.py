"""The mirror's sync against a local stand-in of the SP-API and the real database: the backfill a page
at a time, resuming from the page token after a failure or a restart, incremental passes, and one
worker at a time per seller account."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.connectors.amazon_orders import order_from_amazon
from app.connectors.amazon_search import OrderSearch
from app.connectors.ratelimit import LocalBuckets
from app.db import mirror as rows
from app.db.database import Database
from app.errors import UpstreamUnavailable
from app.runtime import Runtime
from app.services.mirror import SellerAccount, mirror_status
from app.services.mirror_sync import LEASE, OVERLAP, MirrorSync, Step
from tests.connectors.amazon_standin import AmazonStandIn, orders_like
from tests.mirror_builders import TEMPLATE, account_of, live_channel

NOW = datetime.now(UTC)
EVERY = 300.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def standin() -> Iterator[AmazonStandIn]:
    orders = orders_like(TEMPLATE, 250, now=NOW)
    # One order from before the window: the backfill does not ask for it.
    orders |= orders_like(TEMPLATE, 1, now=NOW - timedelta(days=45), days=1, prefix="114")
    with AmazonStandIn(orders) as server:
        yield server


@pytest.fixture
def database(runtime: Runtime) -> Database:
    return runtime.database


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def account(standin: AmazonStandIn) -> SellerAccount:
    return account_of(live_channel(standin, mirror_days=30))


def sync_of(
    database: Database,
    account: SellerAccount,
    http: httpx.AsyncClient,
    clock: Clock,
    owner: str = "worker-a",
) -> MirrorSync:
    search = OrderSearch.build(account.channels, http, buckets=LocalBuckets())
    return MirrorSync(database, account, search, every=EVERY, clock=clock, owner=owner)


async def snapshot(database: Database, account: SellerAccount, order_id: str) -> dict[str, Any] | None:
    async with database.reading() as session:
        held = await rows.find(session, account.key, order_id)
    return held.snapshot if held else None


async def test_the_backfill_holds_the_window_a_page_at_a_time(
    database: Database, account: SellerAccount, http: httpx.AsyncClient, standin: AmazonStandIn
) -> None:
    clock = Clock()
    sync = sync_of(database, account, http, clock)
    assert [await sync.step() for _ in range(3)] == [Step.page, Step.page, Step.done]

    status = await mirror_status(database, account)
    assert (status.held, status.stale, status.phase, status.pages) == (250, 0, "incremental", 3)
    assert status.confirmed_through is None  # a backfill confirms what it read, not what changed meanwhile
    created_after = datetime.fromisoformat(standin.searches[0][1]["createdAfter"][0])
    assert abs(created_after - (clock.now - timedelta(days=30))) < timedelta(seconds=1)
    assert await snapshot(database, account, "114-0000000-0000001") is None
    # What is held is the order normalised as getOrder's answer would be, and nothing of the buyer.
    body = standin.orders["113-0000042-0000001"]
    held = await snapshot(database, account, "113-0000042-0000001")
    expected = order_from_amazon(body, account.channels[0]).model_dump(mode="json", exclude={"mirrored_at"})
    assert held == expected

    # Nothing is due until the sync interval has passed.
    assert await sync.step() is Step.done
    assert len(standin.searches) == 3


async def test_a_page_failing_mid_backfill_is_asked_again_with_its_token_after_a_restart(
    database: Database, account: SellerAccount, http: httpx.AsyncClient, standin: AmazonStandIn
) -> None:
    clock = Clock()
    first = sync_of(database, account, http, clock)
    assert await first.step() is Step.page
    standin.search_faults.append(500)
    with pytest.raises(UpstreamUnavailable):
        await first.step()
    assert (await mirror_status(database, account)).last_error
    await first.release()  # the worker stops

    restarted = sync_of(database, account, http, clock, owner="worker-b")
    assert [await restarted.step() for _ in range(2)] == [Step.page, Step.done]
    tokens = [query.get("paginationToken", [None])[0] for _, query in standin.searches]
    assert tokens[0] is None
    assert tokens[1] is not None
    assert tokens[2] == tokens[1]
    assert tokens[3] is not None
    assert tokens[3] != tokens[2]
    status = await mirror_status(database, account)
    assert (status.held, status.pages, status.last_error) == (250, 3, None)


async def test_a_worker_that_died_holding_the_lease_is_taken_over_once_it_lapses(
    database: Database, account: SellerAccount, http: httpx.AsyncClient, standin: AmazonStandIn
) -> None:
    clock = Clock()
    assert await sync_of(database, account, http, clock).step() is Step.page
    other = sync_of(database, account, http, clock, owner="worker-b")
    assert await other.step() is Step.elsewhere
    assert len(standin.searches) == 1
    clock.now += LEASE + timedelta(seconds=1)
    assert await other.step() is Step.page
    assert standin.searches[1][1].get("paginationToken")


async def test_an_incremental_pass_brings_what_changed_since_the_last(
    database: Database, account: SellerAccount, http: httpx.AsyncClient, standin: AmazonStandIn
) -> None:
    clock = Clock()
    sync = sync_of(database, account, http, clock)
    while await sync.step() is not Step.done:
        pass
    backfill_started = (await mirror_status(database, account)).pass_started_at
    assert backfill_started is not None
    standin.settling = timedelta(0)  # the change is visible to searchOrders at once

    def cancel(order: dict[str, Any]) -> None:
        order["fulfillment"]["fulfillmentStatus"] = "CANCELLED"
        order["packages"] = []

    standin.change("113-0000007-0000001", cancel)
    clock.now += timedelta(seconds=EVERY)
    assert await sync.step() is Step.done
    query = standin.searches[-1][1]
    assert "createdAfter" not in query
    assert datetime.fromisoformat(query["lastUpdatedAfter"][0]) == (backfill_started - OVERLAP).replace(
        microsecond=0
    )
    changed = await snapshot(database, account, "113-0000007-0000001")
    assert changed is not None
    assert changed["shipped_at"] is None
    status = await mirror_status(database, account)
    assert status.confirmed_through is not None
    assert status.held == 250

    # The next pass starts a little before this one's cutoff.
    clock.now += timedelta(seconds=EVERY)
    await sync.step()
    next_from = datetime.fromisoformat(standin.searches[-1][1]["lastUpdatedAfter"][0])
    assert next_from == (status.confirmed_through - OVERLAP).replace(microsecond=0)
