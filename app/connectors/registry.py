"""Which connector serves each channel: the live one when its credentials are set, else the sandbox."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from redis.asyncio import Redis

from app.channels import AmazonChannel, Channel, ShopifyChannel
from app.connectors.amazon import AmazonConnector, seller_account
from app.connectors.base import OrderSource
from app.connectors.lookups import AnswerCache, LocalCache, RedisCache
from app.connectors.order_mirror import OrderMirror
from app.connectors.ratelimit import Buckets, LocalBuckets, RedisBuckets
from app.connectors.sandbox import SandboxConnector
from app.connectors.shopify import ShopifyConnector
from app.errors import ChannelMismatch, UnknownChannel, UnrecognisedOrderRef

# Every key the service keeps in Redis starts with this.
REDIS_PREFIX = "returns-router:"


class Connectors:
    def __init__(self, sources: Mapping[str, OrderSource]) -> None:
        self._sources = dict(sources)

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
    ) -> Connectors:
        """The connectors of `channels`. With `redis`, rate limits, cached orders and in-flight
        lookups are shared with every replica; without it they are this process's own. `mirrors` are
        the Amazon order mirrors by seller account, asked before getOrder."""
        buckets: Buckets = RedisBuckets(redis, REDIS_PREFIX) if redis else LocalBuckets()
        cache: AnswerCache = RedisCache(redis, REDIS_PREFIX) if redis else LocalCache()
        sources: dict[str, OrderSource] = {}
        for key, channel in channels.items():
            if not channel.live:
                sources[key] = SandboxConnector(channel)
            elif isinstance(channel, AmazonChannel):
                sources[key] = AmazonConnector.build(
                    channel,
                    http,
                    buckets=buckets,
                    cache=cache,
                    max_wait=max_wait,
                    order_max_age=order_max_age,
                    mirror=(mirrors or {}).get(seller_account(channel)),
                )
            elif isinstance(channel, ShopifyChannel):
                sources[key] = ShopifyConnector(channel, http)
            else:
                # Serving sandbox orders to a seller who configured real credentials would be worse
                # than not starting at all.
                raise TypeError(f"channel {key} has live credentials but no live connector")
        return cls(sources)

    def source(self, channel_key: str) -> OrderSource:
        return self._sources[channel_key]

    def shopify(self, channel_key: str) -> ShopifyConnector | None:
        """The live Shopify connector of a channel; None for a sandbox or another platform."""
        source = self._sources.get(channel_key)
        return source if isinstance(source, ShopifyConnector) else None

    def candidates(self, order_ref: str, requested: str | None) -> list[OrderSource]:
        """The channels that may hold `order_ref`, in the order to try them.

        A reference has the shape of one platform's orders; a caller's channel that cannot hold
        such an order contradicts it.
        """
        matching = [source for source in self._sources.values() if source.channel.recognises(order_ref)]
        if requested is not None:
            if requested not in self._sources:
                configured = ", ".join(sorted(self._sources))
                raise UnknownChannel(f"Channel {requested!r} is not configured; configured: {configured}.")
            chosen = self._sources[requested]
            if chosen not in matching:
                others = ", ".join(source.channel.key for source in matching) or "no configured channel"
                raise ChannelMismatch(
                    f"Order {order_ref!r} is not a {chosen.channel.platform} order reference; "
                    f"it belongs to {others}."
                )
            return [chosen]
        if not matching:
            raise UnrecognisedOrderRef(
                f"{order_ref!r} is neither an Amazon order id (3-7-7 digits) nor a Shopify order name, "
                "numeric id or GID."
            )
        return matching
