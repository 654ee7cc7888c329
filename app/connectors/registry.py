"""Which connector serves each channel: the live one when its credentials are set, else the sandbox."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from app.channels import Channel, ShopifyChannel
from app.connectors.base import OrderSource
from app.connectors.sandbox import SandboxConnector
from app.connectors.shopify import ShopifyConnector
from app.errors import ChannelMismatch, UnknownChannel, UnrecognisedOrderRef


class LiveConnectorMissing(RuntimeError):
    """Credentials are set for a channel whose live connector this build does not have."""


class Connectors:
    def __init__(self, sources: Mapping[str, OrderSource]) -> None:
        self._sources = dict(sources)

    @classmethod
    def for_channels(cls, channels: Mapping[str, Channel], http: httpx.AsyncClient) -> Connectors:
        sources: dict[str, OrderSource] = {}
        for key, channel in channels.items():
            if channel.live and isinstance(channel, ShopifyChannel):
                sources[key] = ShopifyConnector(channel, http)
                continue
            if channel.live:
                # Serving sandbox orders to a seller who configured real credentials would be worse
                # than not starting at all.
                raise LiveConnectorMissing(
                    f"channel {key} has live credentials, but its live connector is not available yet; "
                    "unset them to run on the sandbox"
                )
            sources[key] = SandboxConnector(channel)
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
