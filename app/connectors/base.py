"""What every connector offers (resolve an order reference of its channel into an `Order`), and
what they share in reading HTTP answers."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

from app.channels import Channel
from app.domain import Order
from app.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable


class OrderSource(Protocol):
    @property
    def channel(self) -> Channel:
        """The channel it serves (read-only, so a connector may name its own kind of channel)."""
        ...

    async def resolve_order(self, order_ref: str) -> Order:
        """The order named by `order_ref`; raises `OrderNotFound` or an `UpstreamError`."""
        ...


def transport_error(error: httpx.TransportError, upstream: str) -> UpstreamError:
    """A failure to get any answer: a timeout is 504, anything else (refused, reset) 503."""
    if isinstance(error, httpx.TimeoutException):
        return UpstreamTimeout(f"{upstream} did not answer in time ({type(error).__name__})")
    return UpstreamUnavailable(f"{upstream} could not be reached ({type(error).__name__})")


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delay seconds or an HTTP date), or None."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
