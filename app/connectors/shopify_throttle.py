"""Shopify's cost-based throttle: a leaky bucket of query points, mirrored from `throttleStatus`.

Every Admin GraphQL answer reports the bucket (`extensions.cost.throttleStatus`: maximum, currently
available, restore rate per second) and the cost of the query. Waiting before a query the bucket
cannot afford is cheaper than sending it and collecting a `THROTTLED` error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

# Before the first answer, Shopify's standard plan: 2,000 points, 100 restored per second.
DEFAULT_MAXIMUM = 2000.0
DEFAULT_RESTORE_RATE = 100.0
# The cost assumed for a query never sent before (Shopify's own single-query estimate is similar).
DEFAULT_COST = 50.0


class CostThrottle:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.maximum = DEFAULT_MAXIMUM
        self.restore_rate = DEFAULT_RESTORE_RATE
        self._available = DEFAULT_MAXIMUM
        self._seen_at = clock()
        self._costs: dict[str, float] = {}  # the last requested cost of each operation
        self._lock = asyncio.Lock()

    def available(self) -> float:
        elapsed = self._clock() - self._seen_at
        return min(self.maximum, self._available + elapsed * self.restore_rate)

    def cost_of(self, operation: str) -> float:
        return self._costs.get(operation, DEFAULT_COST)

    def wait_for(self, cost: float) -> float:
        """Seconds until the bucket holds `cost` points (0 when it does now)."""
        missing = min(cost, self.maximum) - self.available()
        return max(0.0, missing / self.restore_rate)

    async def acquire(self, operation: str) -> bool:
        """Wait until the bucket can afford `operation`, then take its cost out of the local view.
        True when it had to wait.

        Taking the points before the answer arrives keeps concurrent callers from all spending the
        same points; the next `throttleStatus` corrects the estimate.
        """
        cost = self.cost_of(operation)
        async with self._lock:
            wait = self.wait_for(cost)
            if wait > 0:
                await self._sleep(wait)
            self._available = self.available() - cost
            self._seen_at = self._clock()
        return wait > 0

    def observe(self, operation: str, extensions: Mapping[str, Any] | None) -> None:
        """Update the bucket from an answer's `extensions.cost`; a missing or odd one is ignored."""
        cost = (extensions or {}).get("cost")
        if not isinstance(cost, Mapping):
            return
        requested = cost.get("requestedQueryCost")
        if isinstance(requested, int | float) and requested >= 0:
            self._costs[operation] = float(requested)
        status = cost.get("throttleStatus")
        if not isinstance(status, Mapping):
            return
        maximum, available, rate = (
            status.get("maximumAvailable"),
            status.get("currentlyAvailable"),
            status.get("restoreRate"),
        )
        if not all(isinstance(v, int | float) for v in (maximum, available, rate)):
            return
        assert isinstance(maximum, int | float)
        assert isinstance(available, int | float)
        assert isinstance(rate, int | float)
        if maximum <= 0 or rate <= 0:
            return
        self.maximum, self.restore_rate = float(maximum), float(rate)
        self._available = float(available)
        self._seen_at = self._clock()
