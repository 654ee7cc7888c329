"""What a topic's handler is, and which topics the service subscribes to.

A handler works in two steps: `prepare` does the slow part (calls to the channel) outside any
transaction and returns `apply`, which writes the effect in the transaction that also marks the
event processed, so the effect happens once or not at all.

Each handler is built with exactly what it needs; they are registered by topic in `registry.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import WebhookEvent

Apply = Callable[[AsyncSession], Awaitable[str]]
"""Writes the event's effect in the worker's transaction; returns a short outcome for operators."""

Prepare = Callable[[WebhookEvent, datetime], Awaitable[Apply]]
"""Reads what the effect needs (no writes); `datetime` is the worker's now."""


class UnusableEvent(ValueError):
    """The payload lacks what the handler needs: retrying cannot help, so the event is parked."""


@dataclass(frozen=True)
class Handler:
    prepare: Prepare
    # Skip the event when a later change to the same resource was processed already.
    skip_if_stale: bool = False


# Every topic the service subscribes to; the others are stored without their payload and ignored.
SUBSCRIBED_TOPICS = frozenset(
    {
        "returns/request",
        "returns/approve",
        "returns/decline",
        "returns/cancel",
        "returns/close",
        "returns/reopen",
        "returns/process",
        "returns/update",
        "refunds/create",
    }
)
