"""What the Amazon connector asks of the order mirror: a copy of an order current enough to decide on,
and to keep what getOrder answered. The mirror itself is `app/services/mirror.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.domain import Order


@dataclass(frozen=True)
class Mirrored:
    """The mirror's answer: the order when its copy is current, else None (getOrder is asked).

    `changed_at` is the latest change Amazon announced for the order: an answer cached before it must
    not stand in for the order as it is now.
    """

    order: Order | None
    changed_at: datetime | None = None


class OrderMirror(Protocol):
    async def lookup(self, order_id: str) -> Mirrored: ...

    async def remember(self, order: Order, asked_at: datetime) -> None:
        """Keep a getOrder answer asked for at `asked_at`, unless the mirror holds a newer copy."""
        ...
