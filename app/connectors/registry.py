"""Which connector serves each channel: the live one when its credentials are set, else the sandbox."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from redis.asyncio import Redis

from app.channels import AmazonChannel, Channel, ShopifyChannel
from app.connectors.amazon import AmazonConnector
from app.connectors.base import OrderSource
from app.connectors.lookups import AnswerCache, LocalCache, RedisCache
from app.connectors.order_mirror import OrderMirror
from app.connectors.ratelimit import Buckets, LocalBuckets, RedisBuckets
from app.connectors.sandbox import SandboxConnector
from app.connectors.shopify import ShopifyConnector
from app.connectors.sp_api import SellerAccounts
from app.errors import ChannelMismatch, UnknownChannel, UnrecognisedOrderRef

# Every key the service keeps in Redis starts with this.
REDIS_PREFIX = "returns-router:"


def shared_buckets(redis: Redis | None) -> Buckets:
    """The rate-limit buckets of every SP-API and Admin API call of this process; with `redis`, of
    every process and replica (each operation of each seller account or store has a key of its own)."""
    return RedisBuckets(redis, REDIS_PREFIX) if redis else LocalBuckets()


class Connectors:
    def __init__(self, channels: Mapping[str, Channel], sources: Mapping[str, OrderSource]) -> None:
        self._channels = dict(channels)
        self._sources = dict(sources)  # by channel key; the channels of one seller account share one

    @classmethod
    def for_channels(
        cls,
        channels: Mapping[str, Channel],
        *,
        http: httpx.AsyncClient,
        redis: Redis | None = None,
        max_wait: float = 10.0,
        order_max_age: float = 30.0,
        mirrors: Mapping[str, OrderMirror] | None = None,
        accounts: SellerAccounts | None = None,
        buckets: Buckets | None = None,
    ) -> Connectors:
        """The connectors of `channels`. With `redis`, rate limits, cached orders and in-flight
        lookups are shared with every replica; without it they are this process's own. `mirrors` are
        the Amazon order mirrors by seller account, asked before getOrder.

        Amazon channels with the same credentials are one seller account and share one connector (one
        token, one bucket, one answer per order); those without credentials share the sandbox account.
        """
        buckets = buckets or shared_buckets(redis)
        cache: AnswerCache = RedisCache(redis, REDIS_PREFIX) if redis else LocalCache()
        sources: dict[str, OrderSource] = {}
        for account in seller_accounts(channels).values():
            source: OrderSource
            if account[0].live:
                source = AmazonConnector.build(
                    account,
                    http,
                    buckets=buckets,
                    cache=cache,
                    max_wait=max_wait,
                    order_max_age=order_max_age,
                    mirror=(mirrors or {}).get(account[0].seller_account),
                    tokens=(accounts or SellerAccounts(http)).tokens(account[0]),
                )
            else:
                source = SandboxConnector(account)
            sources.update({channel.key: source for channel in account})
        for key, channel in channels.items():
            if isinstance(channel, AmazonChannel):
                continue
            if not channel.live:
                sources[key] = SandboxConnector([channel])
            elif isinstance(channel, ShopifyChannel):
                sources[key] = ShopifyConnector(channel, http)
            else:
                # Serving sandbox orders to a seller who configured real credentials would be worse
                # than not starting at all.
                raise TypeError(f"channel {key} has live credentials but no live connector")
        return cls(channels, {key: sources[key] for key in channels})

    def source(self, channel_key: str) -> OrderSource:
        return self._sources[channel_key]

    def shopify(self, channel_key: str) -> ShopifyConnector | None:
        """The live Shopify connector of a channel; None for a sandbox or another platform."""
        source = self._sources.get(channel_key)
        return source if isinstance(source, ShopifyConnector) else None

    def candidates(self, order_ref: str, requested: str | None) -> list[OrderSource]:
        """The sources that may hold `order_ref`, in the order to try them, each once.

        A reference has the shape of one platform's orders; a caller's channel that cannot hold
        such an order contradicts it.
        """
        matching = [key for key, channel in self._channels.items() if channel.recognises(order_ref)]
        if requested is not None:
            if requested not in self._sources:
                configured = ", ".join(sorted(self._sources))
                raise UnknownChannel(f"Channel {requested!r} is not configured; configured: {configured}.")
            if requested not in matching:
                platform = self._channels[requested].platform
                others = ", ".join(matching) or "no configured channel"
                raise ChannelMismatch(
                    f"Order {order_ref!r} is not a {platform} order reference; it belongs to {others}."
                )
            return [self._sources[requested]]
        if not matching:
            raise UnrecognisedOrderRef(
                f"{order_ref!r} is neither an Amazon order id (3-7-7 digits) nor a Shopify order name, "
                "numeric id or GID."
            )
        unique: dict[int, OrderSource] = {id(self._sources[key]): self._sources[key] for key in matching}
        return list(unique.values())


def seller_accounts(channels: Mapping[str, Channel]) -> dict[str, list[AmazonChannel]]:
    """The Amazon channels grouped by seller account (its channels name one endpoint: see
    `channel_config`); those without credentials are the one sandbox account."""
    accounts: dict[str, list[AmazonChannel]] = {}
    for channel in channels.values():
        if isinstance(channel, AmazonChannel):
            accounts.setdefault(channel.seller_account, []).append(channel)
    return accounts
