"""searchOrders against a local stand-in of the SP-API: the query the model describes, pages and their
tokens, and Amazon's usage plan kept in the shared bucket (a 429 drains it, for every worker)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.connectors.amazon_search import SEARCH_ORDERS_LIMIT, OrderSearch, PageTokenRefused, Query
from app.connectors.ratelimit import Buckets, Limit, LocalBuckets, RedisBuckets
from app.errors import UpstreamRateLimited, UpstreamUnavailable
from tests.connectors.amazon_standin import AmazonStandIn, orders_like
from tests.mirror_builders import TEMPLATE, live_channel

NOW = datetime.now(UTC)


@pytest.fixture
def standin() -> Iterator[AmazonStandIn]:
    with AmazonStandIn(orders_like(TEMPLATE, 250, now=NOW)) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def search_of(standin: AmazonStandIn, http: httpx.AsyncClient, buckets: Buckets) -> OrderSearch:
    return OrderSearch.build([live_channel(standin)], http, buckets=buckets, max_wait=0)


async def test_pages_follow_their_token_and_ask_only_what_the_model_offers(
    standin: AmazonStandIn,
    http: httpx.AsyncClient,
    amazon_orders_model: dict[str, Any],
) -> None:
    search = search_of(standin, http, LocalBuckets())
    query = Query(created_after=NOW - timedelta(days=30))
    seen: list[str] = []
    token: str | None = None
    for _ in range(3):
        page = await search.page(query, token)
        seen += [order["orderId"] for order in page.orders]
        token = page.next_token
    assert token is None
    assert sorted(seen) == sorted(standin.orders)
    assert len(seen) == 250
    assert page.cutoff is not None
    assert NOW - timedelta(minutes=3) < page.cutoff < datetime.now(UTC)

    declared = {
        parameter["name"]
        for parameter in amazon_orders_model["paths"]["/orders/2026-01-01/orders"]["get"]["parameters"]
    }
    first, second = standin.searches[0][1], standin.searches[1][1]
    assert set(first) <= declared
    assert first["maxResultsPerPage"] == ["100"]
    assert first["includedData"] == ["FULFILLMENT,PACKAGES,PROCEEDS"]  # never BUYER or RECIPIENT
    assert first["createdAfter"] == [query.params()["createdAfter"]]
    assert "paginationToken" not in first
    assert second["paginationToken"]
    assert second["createdAfter"] == first["createdAfter"]


async def test_a_token_amazon_refuses_is_told_apart(standin: AmazonStandIn, http: httpx.AsyncClient) -> None:
    search = search_of(standin, http, LocalBuckets())
    with pytest.raises(PageTokenRefused):
        await search.page(Query(created_after=NOW - timedelta(days=30)), "bm90IGEgdG9rZW4=")


async def test_a_failing_page_is_an_upstream_error_and_is_not_retried_here(
    standin: AmazonStandIn, http: httpx.AsyncClient
) -> None:
    standin.search_faults.append(503)
    search = search_of(standin, http, LocalBuckets())
    with pytest.raises(UpstreamUnavailable):
        await search.page(Query(last_updated_after=NOW - timedelta(hours=1)))
    assert len(standin.searches) == 1


@pytest.mark.parametrize("store", ["local", "redis"])
async def test_a_429_drains_the_shared_bucket(
    store: str,
    http: httpx.AsyncClient,
    redis: Redis,
    redis_prefix: str,
) -> None:
    # Amazon's bucket holds one call where ours believes in a burst of 19: Amazon's word wins.
    buckets: Buckets = RedisBuckets(redis, redis_prefix) if store == "redis" else LocalBuckets()
    with AmazonStandIn(
        orders_like(TEMPLATE, 5, now=NOW), search_limit=Limit(rate=0.0056, burst=1)
    ) as standin:
        channel = live_channel(standin)
        search = OrderSearch.build([channel], http, buckets=buckets, max_wait=0)
        query = Query(created_after=NOW - timedelta(days=30))
        await search.page(query)
        with pytest.raises(UpstreamRateLimited):
            await search.page(query)
        # Another worker sharing the bucket is refused too, without calling Amazon.
        other = OrderSearch.build([channel], http, buckets=buckets, max_wait=0)
        with pytest.raises(UpstreamRateLimited, match="backlog"):
            await other.page(query)
        assert (len(standin.searches), standin.search_throttled) == (2, 1)
    key = f"amazon:{channel.seller_account}:searchOrders"
    refused = await buckets.reserve(key, Limit(SEARCH_ORDERS_LIMIT.rate, SEARCH_ORDERS_LIMIT.burst - 1), 0)
    assert not refused.granted
    assert refused.wait > 170
