"""The live Amazon connector: `getOrder` of the Selling Partner API, Orders 2026-01-01, for one seller
account and every channel (marketplace) it sells on.

Each call waits for a token of the account's getOrder bucket, carries a Login with Amazon access
token, and is retried (it is a read) on throttling, 5xx and timeouts. Concurrent and repeated
lookups of one order share one call through `Lookups`, whichever channel asked: the order's
`salesChannel.marketplaceId` picks its channel (`channel_of`), and the answer is normalised by
`order_from_amazon`, the same code the sandbox runs. With an order mirror, a lookup asks it first and
calls getOrder only when the mirror holds no current copy; getOrder's answer is kept in the mirror.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from app.channels import AMAZON_ORDER_ID, AmazonChannel
from app.connectors.amazon_auth import AccessTokens
from app.connectors.amazon_orders import INCLUDED_DATA, channel_of, order_from_amazon
from app.connectors.base import transport_error
from app.connectors.calls import recorded_call
from app.connectors.lookups import AnswerCache, Lookups
from app.connectors.order_mirror import OrderMirror
from app.connectors.ratelimit import Buckets, Limit, RateLimiter
from app.connectors.retry import RetryPolicy, with_retries
from app.connectors.sp_api import access_tokens, refused
from app.domain import Order
from app.errors import (
    OrderNotFound,
    ProblemError,
    UpstreamBadResponse,
    ValidationProblem,
)

UPSTREAM = "Amazon SP-API getOrder"
GET_ORDER = "/orders/2026-01-01/orders/{order_id}"
TIMEOUT = httpx.Timeout(10.0, connect=3.0)
RETRY = RetryPolicy()  # four attempts in all; a Retry-After beyond 20 s goes up as the 503


class AmazonConnector:
    """An `OrderSource` for the live Amazon channels of one seller account (the same credentials)."""

    def __init__(
        self,
        channels: Sequence[AmazonChannel],
        http: httpx.AsyncClient,
        *,
        tokens: AccessTokens,
        limiter: RateLimiter,
        orders: Lookups[Order],
        retry: RetryPolicy = RETRY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        mirror: OrderMirror | None = None,
    ) -> None:
        # The first channel names the account in metrics and errors (`amazon_us.get_order`).
        self.channel = channel = channels[0]
        self.channels = tuple(channels)
        self._http = http
        self._tokens = tokens
        self._limiter = limiter
        self._orders = orders
        self._retry = retry
        self._sleep = sleep
        self._mirror = mirror
        self._base = channel.endpoint.rstrip("/")
        self._account = channel.seller_account
        self._label = get_order_label(channel)  # this upstream in the metrics

    @classmethod
    def build(
        cls,
        channels: Sequence[AmazonChannel],
        http: httpx.AsyncClient,
        *,
        buckets: Buckets,
        cache: AnswerCache,
        max_wait: float,
        order_max_age: float,
        mirror: OrderMirror | None = None,
        tokens: AccessTokens | None = None,
    ) -> AmazonConnector:
        """getOrder for the seller account of `channels`; `tokens` the account's (see `SellerAccounts`)."""
        channel = channels[0]
        if any(other.seller_account != channel.seller_account for other in channels):
            raise ValueError("channels of different seller accounts share no connector")
        tokens = tokens or access_tokens(channel, http)
        # Amazon counts getOrder per seller account and application, whatever replica calls. One
        # token of the burst is held back: calls leave on schedule but can arrive out of step (a new
        # connection, a slow hop) and Amazon counts arrivals; a token of slack absorbs that jitter
        # at the cost of one call once, not of the rate.
        # The channels of one account share its usage plan; if they state it differently, the
        # smallest is the one that cannot be exceeded.
        rate = min(other.get_order_rate for other in channels)
        burst = min(other.get_order_burst for other in channels)
        limiter = RateLimiter(
            buckets,
            f"amazon:{channel.seller_account}:getOrder",
            Limit(rate=rate, burst=max(1, burst - 1)),
            max_wait=max_wait,
            upstream=UPSTREAM,
            label=get_order_label(channel),
        )
        orders = Lookups[Order](
            cache,
            max_age=order_max_age,
            encode=lambda order: order.model_dump_json().encode(),
            decode=Order.model_validate_json,
        )
        return cls(channels, http, tokens=tokens, limiter=limiter, orders=orders, retry=RETRY, mirror=mirror)

    async def resolve_order(self, order_ref: str) -> Order:
        order_id = order_ref.strip()
        if not AMAZON_ORDER_ID.match(order_id):
            raise ValidationProblem(
                f"{order_id!r} is not an Amazon order id (3-7-7 digits).",
                errors=[
                    {"loc": ["body", "order_ref"], "msg": "not an Amazon order id", "type": "value_error"}
                ],
            )

        async def fetch() -> Order:
            asked_at = datetime.now(UTC)
            order = await with_retries(
                lambda: self._get_order(order_id), self._retry, upstream=self._label, sleep=self._sleep
            )
            if self._mirror is not None:
                await self._mirror.remember(order, asked_at)
            return order

        # One answer serves every channel of the account: the key names the account, not the channel.
        key = f"amazon:{self._account}:order:{order_id}"
        if self._mirror is not None:
            mirrored = await self._mirror.lookup(order_id)
            if mirrored.order is not None:
                return mirrored.order
            if mirrored.changed_at is not None:
                # Amazon announced a change: an answer cached before it is not the order as it is now.
                key += f"@{mirrored.changed_at.isoformat()}"
        return await self._orders.get(key, fetch)

    async def _get_order(self, order_id: str) -> Order:
        token = await self._tokens.current()
        await self._limiter.acquire()
        async with recorded_call(self._label):
            try:
                response = await self._http.get(
                    self._base + GET_ORDER.format(order_id=quote(order_id, safe="")),
                    # Never BUYER or RECIPIENT: see INCLUDED_DATA. The model's arrays are comma-separated.
                    params={"includedData": ",".join(INCLUDED_DATA)},
                    headers={"x-amz-access-token": token, "accept": "application/json"},
                    timeout=TIMEOUT,
                )
            except httpx.TransportError as error:
                raise transport_error(error, UPSTREAM) from error
            if response.status_code == 200:
                body = _json(response)
                channel, assumed = channel_of(body, self.channels)
                return order_from_amazon(body, channel, sandbox=False, assumed=assumed)
            raise await self._refusal(response, order_id, token)

    async def _refusal(self, response: httpx.Response, order_id: str, token: str) -> ProblemError:
        status, codes = response.status_code, _error_codes(response)
        said = f"{UPSTREAM} answered {status} {'/'.join(codes) or '(no error code)'}"
        if status == 404:
            channels = ", ".join(channel.key for channel in self.channels)
            return OrderNotFound(f"No order {order_id!r} on Amazon (channel {channels}).")
        if status == 400 and "InvalidInput" in codes:
            return ValidationProblem(
                f"Amazon does not accept {order_id!r} as an order id.",
                errors=[{"loc": ["body", "order_ref"], "msg": "rejected by Amazon", "type": "value_error"}],
            )
        return await refused(response, said, tokens=self._tokens, token=token, limiter=self._limiter)


def get_order_label(channel: AmazonChannel) -> str:
    return f"{channel.key}.get_order"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as error:
        raise UpstreamBadResponse(f"{UPSTREAM} answered something that is not JSON") from error


def _error_codes(response: httpx.Response) -> list[str]:
    """The `code`s of an SP-API `ErrorList` (their messages may quote the request: not logged)."""
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    codes = [e.get("code") for e in errors if isinstance(e, dict)]
    return [code for code in codes if isinstance(code, str) and code.isidentifier()]
