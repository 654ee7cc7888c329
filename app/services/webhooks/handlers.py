"""What a topic's handler is, and which topics the service subscribes to.

A handler works in two steps: `prepare` does the slow part (calls to the channel) outside any
transaction and returns `apply`, which writes the effect in the transaction that also marks the
event processed, so the effect happens once or not at all.

Each handler is built with exactly what it needs; they are registered by topic in `registry.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import WebhookEvent

Apply = Callable[[AsyncSession], Awaitable[str]]
"""Writes the event's effect in the worker's transaction; returns a short outcome for operators."""

Prepare = Callable[[WebhookEvent, datetime], Awaitable[Apply]]
"""Reads what the effect needs (no writes); `datetime` is the worker's now."""


def shopify_gid(kind: str, resource: Mapping[str, Any], number_key: str = "id") -> str | None:
    """The Shopify resource a REST payload names, as the GID the service keeps: its
    `admin_graphql_api_id` when that is a `kind` GID (exact where a numeric id may have lost digits to
    a reader of floats), else `gid://shopify/<kind>/<its numeric id>` (a positive integer, or its
    digits as text); None when it has neither."""
    gid = resource.get("admin_graphql_api_id")
    if isinstance(gid, str) and gid.startswith(f"gid://shopify/{kind}/") and gid.rsplit("/", 1)[1].isdigit():
        return gid
    number = resource.get(number_key)
    if isinstance(number, bool) or not isinstance(number, int | str):
        return None
    digits = str(number)
    return f"gid://shopify/{kind}/{digits}" if digits.isdigit() and int(digits) > 0 else None


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
