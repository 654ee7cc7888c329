"""`searchOrders` of the Selling Partner API, Orders 2026-01-01: a page of up to 100 orders at a time,
for the order mirror of one seller account.

Each call waits for a token of the account's searchOrders bucket (Amazon's plan: 0.0056 requests a
second, burst 20), shared through Redis with every worker and replica, as getOrder's is. A 429 drains
the bucket. A page that fails is not retried here: the sync asks for it again later, with its token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from app.channels import AmazonChannel
from app.connectors.amazon_auth import AccessTokens
from app.connectors.amazon_orders import INCLUDED_DATA
from app.connectors.base import transport_error
from app.connectors.calls import recorded_call
from app.connectors.payload import aware_moment
from app.connectors.ratelimit import Buckets, Limit, RateLimiter
from app.connectors.sp_api import access_tokens, refused
from app.errors import (
    UpstreamBadResponse,
    UpstreamError,
)

UPSTREAM = "Amazon SP-API searchOrders"
SEARCH_ORDERS = "/orders/2026-01-01/orders"
TIMEOUT = httpx.Timeout(30.0, connect=3.0)
PAGE_SIZE = 100  # the most the model allows
# Amazon's published usage plan for searchOrders (the model's own table).
SEARCH_ORDERS_LIMIT = Limit(rate=0.0056, burst=20)
# A sync waits for its turn: it has no caller to answer in time.
MAX_WAIT = 3600.0


class PageTokenRefused(UpstreamBadResponse):
    """Amazon refused the query or its page token (400): expired after 24 hours, or never valid."""


@dataclass(frozen=True)
class Query:
    """One pass over the orders: created after a moment (the backfill), or updated after one."""

    created_after: datetime | None = None
    last_updated_after: datetime | None = None

    def params(self) -> dict[str, str]:
        if (self.created_after is None) == (self.last_updated_after is None):
            raise ValueError("a search takes createdAfter or lastUpdatedAfter, exactly one")
        if self.created_after is not None:
            return {"createdAfter": _iso(self.created_after)}
        assert self.last_updated_after is not None
        return {"lastUpdatedAfter": _iso(self.last_updated_after)}


@dataclass(frozen=True)
class Page:
    orders: Sequence[Mapping[str, Any]]  # SP-API `Order` objects, as Amazon sent them
    next_token: str | None
    # Amazon's own cutoff: the pass covers what changed (or was created) before it.
    cutoff: datetime | None


class OrderSearch:
    """searchOrders for one seller account.

    Every marketplace of the account, as getOrder answers for any: which channel an order belongs to
    is the mirror's to tell, order by order.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        endpoint: str,
        tokens: AccessTokens,
        limiter: RateLimiter,
        label: str,
    ) -> None:
        self._http = http
        self._url = endpoint.rstrip("/") + SEARCH_ORDERS
        self._tokens = tokens
        self._limiter = limiter
        self.label = label  # this upstream in the metrics, e.g. `amazon_us.search_orders`

    @classmethod
    def build(
        cls,
        channels: Sequence[AmazonChannel],
        http: httpx.AsyncClient,
        *,
        buckets: Buckets,
        limit: Limit = SEARCH_ORDERS_LIMIT,
        max_wait: float = MAX_WAIT,
        tokens: AccessTokens | None = None,
    ) -> OrderSearch:
        """searchOrders for the seller account of `channels` (channels with the same credentials);
        `tokens` the account's (see `SellerAccounts`)."""
        channel = channels[0]
        tokens = tokens or access_tokens(channel, http)
        # The same bucket for every worker and replica of the account, as getOrder's; one token of the
        # burst held back for calls that arrive out of step (see AmazonConnector.build).
        limiter = RateLimiter(
            buckets,
            f"amazon:{channel.seller_account}:searchOrders",
            Limit(rate=limit.rate, burst=max(1, limit.burst - 1)),
            max_wait=max_wait,
            upstream=UPSTREAM,
            label=f"{channel.key}.search_orders",
        )
        return cls(
            http,
            endpoint=channel.endpoint,
            tokens=tokens,
            limiter=limiter,
            label=f"{channel.key}.search_orders",
        )

    async def page(self, query: Query, pagination_token: str | None = None) -> Page:
        """One page of `query`: the first, or the one `pagination_token` names."""
        params = {
            **query.params(),
            "maxResultsPerPage": str(PAGE_SIZE),
            # Never BUYER or RECIPIENT: see INCLUDED_DATA.
            "includedData": ",".join(INCLUDED_DATA),
        }
        if pagination_token is not None:
            params["paginationToken"] = pagination_token
        token = await self._tokens.current()
        await self._limiter.acquire()
        async with recorded_call(self.label):
            try:
                response = await self._http.get(
                    self._url,
                    params=params,
                    headers={"x-amz-access-token": token, "accept": "application/json"},
                    timeout=TIMEOUT,
                )
            except httpx.TransportError as error:
                raise transport_error(error, UPSTREAM) from error
            if response.status_code == 200:
                return _page(response)
            raise await self._refusal(response, token)

    async def _refusal(self, response: httpx.Response, token: str) -> UpstreamError:
        status = response.status_code
        said = f"{UPSTREAM} answered {status}"
        if status == 400:
            return PageTokenRefused(said)
        return await refused(response, said, tokens=self._tokens, token=token, limiter=self._limiter)


def _page(response: httpx.Response) -> Page:
    try:
        body = response.json()
    except ValueError as error:
        raise UpstreamBadResponse(f"{UPSTREAM} answered something that is not JSON") from error
    orders = body.get("orders") if isinstance(body, dict) else None
    if not isinstance(orders, list) or not all(isinstance(order, dict) for order in orders):
        raise UpstreamBadResponse(f"{UPSTREAM} answered without a list of orders")
    pagination = body.get("pagination")
    next_token = pagination.get("nextToken") if isinstance(pagination, dict) else None
    if next_token is not None and (not isinstance(next_token, str) or not next_token):
        raise UpstreamBadResponse(f"{UPSTREAM} answered a pagination token that is not a string")
    cutoff = body.get("lastUpdatedBefore") or body.get("createdBefore")
    return Page(orders=orders, next_token=next_token, cutoff=aware_moment(cutoff))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
