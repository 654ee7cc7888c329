"""Each call to a channel's API, timed and counted by outcome for `/metrics`.

A connector wraps one HTTP exchange and its reading in `recorded_call`; the outcome comes from
what the block ends in (an answer, or one of the domain errors), so every connector reports the
same small set of outcomes whatever its upstream's status codes mean.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app import metrics
from app.errors import (
    NotFound,
    UpstreamAuthFailed,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

# Most specific first; anything else a call ends in (a bad answer, a refused input, a bug) is "error".
_OUTCOMES: tuple[tuple[type[Exception], str], ...] = (
    (NotFound, "not_found"),
    (UpstreamRateLimited, "throttled"),
    (UpstreamTimeout, "timeout"),
    (UpstreamUnavailable, "unavailable"),
    (UpstreamAuthFailed, "auth_failed"),
)
OUTCOMES = ("ok", *(outcome for _, outcome in _OUTCOMES), "error")


def outcome_of(error: Exception | None) -> str:
    if error is None:
        return "ok"
    return next((outcome for kind, outcome in _OUTCOMES if isinstance(error, kind)), "error")


@asynccontextmanager
async def recorded_call(upstream: str) -> AsyncIterator[None]:
    """Time the block as one call to `upstream` (a fixed name like `amazon_us.get_order`)."""
    started = time.perf_counter()
    try:
        yield
    except Exception as error:
        metrics.record_upstream_call(upstream, outcome_of(error), time.perf_counter() - started)
        raise
    metrics.record_upstream_call(upstream, "ok", time.perf_counter() - started)
