"""Token buckets for upstream rate limits: in-process, or shared through Redis by every replica.

A caller reserves a token before each upstream call. When the bucket is empty the reservation
still succeeds if the token comes within `max_wait`: the bucket goes into debt and the caller
sleeps until its turn, so queued callers are served in order at exactly the allowed rate. A
token further away than that is refused (nothing is taken) and the caller answers 503 at once
rather than hang.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app import metrics
from app.errors import RateLimitWaitTooLong, UpstreamUnavailable


@dataclass(frozen=True)
class Limit:
    """An upstream's usage plan for one operation: `rate` tokens a second, at most `burst` saved."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"a rate limit needs a positive rate and a burst of at least 1: {self}")


@dataclass(frozen=True)
class Reservation:
    granted: bool
    wait: float  # seconds until the token is due (granted), or until it would have been (refused)


class Buckets(Protocol):
    """Where the buckets live. Keys name one bucket: an account and an operation."""

    async def reserve(self, key: str, limit: Limit, max_wait: float) -> Reservation: ...

    async def drain(self, key: str, limit: Limit) -> None:
        """Empty the bucket: the upstream said its own is empty (a 429), whatever ours believed."""
        ...


class RateLimiter:
    """One bucket (`key`) of a `Buckets` store, as a connector uses it before each call."""

    def __init__(
        self,
        buckets: Buckets,
        key: str,
        limit: Limit,
        *,
        max_wait: float,
        upstream: str,
        label: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`upstream` names the operation to people (in a 503's detail), `label` in the metrics."""
        self.buckets, self.key, self.limit, self.max_wait = buckets, key, limit, max_wait
        self.upstream = upstream
        self.label = label or upstream
        self._sleep = sleep

    async def acquire(self) -> None:
        """Wait for a token; raises `RateLimitWaitTooLong` when it is further than `max_wait` away."""
        reservation = await self.buckets.reserve(self.key, self.limit, self.max_wait)
        if not reservation.granted:
            metrics.record_throttle(self.label, "refused")
            raise RateLimitWaitTooLong(
                f"{self.upstream}: the rate limit ({self.limit.rate:g}/s) has a backlog of "
                f"{reservation.wait:.1f} s, more than the {self.max_wait:g} s a request may wait.",
                retry_after=reservation.wait - self.max_wait,
            )
        if reservation.wait > 0:
            metrics.record_throttle(self.label, "waited")
            await self._sleep(reservation.wait)

    async def exhausted(self) -> None:
        await self.buckets.drain(self.key, self.limit)


def _refill(tokens: float, at: float, now: float, limit: Limit) -> float:
    return min(float(limit.burst), tokens + max(0.0, now - at) * limit.rate)


class LocalBuckets:
    """Buckets in this process: right for one replica; each replica would get the whole limit."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)

    async def reserve(self, key: str, limit: Limit, max_wait: float) -> Reservation:
        # No await between reading and writing the state: atomic on the event loop.
        now = self._clock()
        tokens, at = self._state.get(key, (float(limit.burst), now))
        tokens = _refill(tokens, at, now, limit)
        wait = max(0.0, (1 - tokens) / limit.rate)
        if wait > max_wait:
            return Reservation(granted=False, wait=wait)
        self._state[key] = (tokens - 1, now)
        return Reservation(granted=True, wait=wait)

    async def drain(self, key: str, limit: Limit) -> None:
        now = self._clock()
        tokens, at = self._state.get(key, (float(limit.burst), now))
        self._state[key] = (min(0.0, _refill(tokens, at, now, limit)), now)


# Lua runs atomically in Redis, and the time is Redis's own (TIME), so replicas whose clocks
# disagree still share one bucket. Numbers go back as strings: Lua would truncate them to integers.
_REFILL = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
"""
_SAVE = """
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
-- Once full again the bucket is the same as no bucket: let it expire.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
"""
_RESERVE = (
    _REFILL
    + """
local wait = math.max(0, (1 - tokens) / rate)
if wait > tonumber(ARGV[3]) then
  return {0, tostring(wait)}
end
tokens = tokens - 1
"""
    + _SAVE
    + "return {1, tostring(wait)}"
)
_DRAIN = _REFILL + "tokens = math.min(0, tokens)\n" + _SAVE + "return 1"


class RedisBuckets:
    """Buckets in Redis, shared by every replica (and worker process) using the same `prefix`."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._reserve = redis.register_script(_RESERVE)
        self._drain = redis.register_script(_DRAIN)

    async def reserve(self, key: str, limit: Limit, max_wait: float) -> Reservation:
        try:
            granted, wait = await self._reserve(
                keys=[self._key(key)], args=[repr(limit.rate), limit.burst, repr(max_wait)]
            )
        except RedisError as error:
            raise _store_down(error) from error
        return Reservation(granted=int(granted) == 1, wait=float(wait))

    async def drain(self, key: str, limit: Limit) -> None:
        try:
            await self._drain(keys=[self._key(key)], args=[repr(limit.rate), limit.burst])
        except RedisError as error:
            raise _store_down(error) from error

    def _key(self, key: str) -> str:
        return f"{self._prefix}bucket:{key}"


def _store_down(error: RedisError) -> UpstreamUnavailable:
    # Without the shared bucket the replicas could not keep to the limit together: no call is made.
    return UpstreamUnavailable(f"the shared rate-limit store is unavailable ({type(error).__name__})")
