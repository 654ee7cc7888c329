"""What every connector offers: resolve an order reference of its channel into an `Order`."""

from __future__ import annotations

from typing import Protocol

from app.channels import Channel
from app.domain import Order


class OrderSource(Protocol):
    @property
    def channel(self) -> Channel: ...

    async def resolve_order(self, order_ref: str) -> Order:
        """The order named by `order_ref`; raises `OrderNotFound` or an `UpstreamError`."""
        ...
