"""The built-in sandbox: serves channels' orders from the JSON fixtures shipped in the package.

A channel without live credentials uses it, so the service can be tried end to end. The fixtures
are channel answers (SP-API `GetOrderResponse`, Shopify `order` nodes) and go through the same
normalisation as live answers.

A Shopify store's sandbox holds `fixtures/<channel key>/`. The Amazon channels without credentials
share one sandbox seller account holding every `fixtures/amazon_*/` order, as one North America
account answers orders from every marketplace: each order's marketplace picks its channel, and an
order from a marketplace no channel sells on is `unsupported_marketplace`, as it would be live.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable

from app.channels import AmazonChannel, Channel, ShopifyChannel
from app.connectors import payload
from app.connectors.amazon_orders import channel_of, order_from_amazon
from app.connectors.shopify_orders import order_from_shopify, order_lookups
from app.domain import Order
from app.errors import OrderNotFound, UnsupportedMarketplace

_FIXTURES = files("app.connectors").joinpath("fixtures")


class SandboxConnector:
    """An `OrderSource` over fixtures: one Shopify store's, or the Amazon sandbox account's."""

    def __init__(self, channels: Sequence[Channel]) -> None:
        self.channel = channels[0]  # the first names the sandbox in messages
        self.channels = tuple(channels)
        self._by_ref: dict[str, Order | UnsupportedMarketplace] = {}
        self._by_id: dict[str, Order | UnsupportedMarketplace] = {}
        amazon = [channel for channel in channels if isinstance(channel, AmazonChannel)]
        if amazon:
            for body in _bodies(_amazon_fixture_files()):
                self._add_amazon(body, amazon)
        elif isinstance(self.channel, ShopifyChannel):
            if len(channels) > 1:
                raise ValueError("each Shopify store has a sandbox of its own")
            for body in _bodies(_fixture_files(self.channel.key)):
                order = order_from_shopify(body, self.channel, sandbox=True)
                self._by_ref[order.order_ref], self._by_id[order.order_id] = order, order
        else:
            raise TypeError(f"no sandbox for channel type {type(self.channel).__name__}")

    def _add_amazon(self, body: dict[str, object], channels: Sequence[AmazonChannel]) -> None:
        try:
            channel, assumed = channel_of(body, channels)
        except UnsupportedMarketplace as refusal:
            # Known to the account, refused when asked for, as a live account's answer would be.
            order_id = payload.text(payload.obj(body, "order", "fixture"), "orderId", "fixture")
            self._by_ref[order_id] = self._by_id[order_id] = refusal
            return
        order = order_from_amazon(body, channel, sandbox=True, assumed=assumed)
        self._by_ref[order.order_ref] = self._by_id[order.order_id] = order

    def order_refs(self) -> list[str]:
        """The references the sandbox knows, as people write them (Amazon order ids, `#1001`)."""
        return sorted(self._by_ref)

    async def resolve_order(self, order_ref: str) -> Order:
        ref = order_ref.strip()
        found = self._find(ref)
        if found is None:
            known = ", ".join(self.order_refs()) or "none"
            channels = ", ".join(channel.key for channel in self.channels)
            raise OrderNotFound(
                f"No order {ref!r} in the sandbox of channel {channels} "
                f"(it has no live credentials); sandbox orders: {known}"
            )
        if isinstance(found, UnsupportedMarketplace):
            raise UnsupportedMarketplace(found.detail, extra=found.extra)
        return found

    def _find(self, ref: str) -> Order | UnsupportedMarketplace | None:
        if not isinstance(self.channel, ShopifyChannel):
            return self._by_ref.get(ref)
        for lookup in order_lookups(ref):
            found = (self._by_id if lookup.by == "id" else self._by_ref).get(lookup.value)
            if found is not None:
                return found
        return None


def _bodies(paths: list[Traversable]) -> list[dict[str, object]]:
    bodies = []
    for path in paths:
        body = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(body, dict):
            raise ValueError(f"sandbox fixture {path.name} is not a JSON object")
        bodies.append(body)
    return bodies


def _amazon_fixture_files() -> list[Traversable]:
    folders = [entry for entry in _FIXTURES.iterdir() if entry.is_dir() and entry.name.startswith("amazon_")]
    return [path for folder in sorted(folders, key=lambda f: f.name) for path in _fixture_files(folder.name)]


def _fixture_files(folder_name: str) -> list[Traversable]:
    folder = _FIXTURES.joinpath(folder_name)
    if not folder.is_dir():  # a configured channel with no fixtures: an empty sandbox
        return []
    return sorted((entry for entry in folder.iterdir() if entry.name.endswith(".json")), key=lambda e: e.name)
