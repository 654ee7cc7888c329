"""The built-in sandbox: serves a channel's orders from the JSON fixtures shipped in the package.

A channel without live credentials uses it, so the service can be tried end to end. The fixtures
are channel answers (SP-API `GetOrderResponse`, Shopify `order` nodes) and go through the same
normalisation as live answers.
"""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable

from app.channels import AmazonChannel, Channel, ShopifyChannel
from app.connectors.amazon_orders import order_from_amazon
from app.connectors.shopify_orders import order_from_shopify, order_lookups
from app.domain import Order
from app.errors import OrderNotFound

_FIXTURES = files("app.connectors").joinpath("fixtures")


class SandboxConnector:
    """An `OrderSource` for one channel, over the fixtures in `fixtures/<channel key>/`."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        orders = [
            self._normalise(json.loads(path.read_text(encoding="utf-8"))) for path in _fixture_files(channel)
        ]
        self._by_ref = {order.order_ref: order for order in orders}
        self._by_id = {order.order_id: order for order in orders}

    def _normalise(self, body: object) -> Order:
        if not isinstance(body, dict):
            raise ValueError(f"sandbox fixture for {self.channel.key} is not a JSON object")
        if isinstance(self.channel, AmazonChannel):
            return order_from_amazon(body, self.channel, sandbox=True)
        if isinstance(self.channel, ShopifyChannel):
            return order_from_shopify(body, self.channel, sandbox=True)
        raise TypeError(f"no sandbox for channel type {type(self.channel).__name__}")

    def order_refs(self) -> list[str]:
        """The references the sandbox knows, as people write them (Amazon order ids, `#1001`)."""
        return sorted(self._by_ref)

    async def resolve_order(self, order_ref: str) -> Order:
        ref = order_ref.strip()
        order = self._find(ref)
        if order is None:
            known = ", ".join(self.order_refs()) or "none"
            raise OrderNotFound(
                f"No order {ref!r} in the sandbox of channel {self.channel.key} "
                f"(it has no live credentials); sandbox orders: {known}"
            )
        return order

    def _find(self, ref: str) -> Order | None:
        if not isinstance(self.channel, ShopifyChannel):
            return self._by_ref.get(ref)
        for lookup in order_lookups(ref):
            found = (self._by_id if lookup.by == "id" else self._by_ref).get(lookup.value)
            if found is not None:
                return found
        return None


def _fixture_files(channel: Channel) -> list[Traversable]:
    folder = _FIXTURES.joinpath(channel.key)
    if not folder.is_dir():  # a configured channel with no fixtures: an empty sandbox
        return []
    return sorted((entry for entry in folder.iterdir() if entry.name.endswith(".json")), key=lambda e: e.name)
