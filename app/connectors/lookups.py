"""Upstream lookups that share their work: one call for concurrent requests of the same thing, and a
short-lived cache for repeats.

Within a process, concurrent lookups of one key await a single task. With Redis, replicas share
the cache and a claim on the key (a redis-py `Lock`: only the holder of its token releases it), so
only one replica calls the upstream while the others wait for its answer to land in the cache.
Answers are cached for at most `max_age` seconds from when they arrived; errors are never cached.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import structlog
from redis.asyncio import Redis
from redis.exceptions import LockNotOwnedError, RedisError

T = TypeVar("T")
log = structlog.get_logger(__name__)


class Claim(Protocol):
    """The right to fetch a key while others wait; it lapses by itself after its time to live."""

    async def release(self) -> None:
        """Give the claim up, if it is still this holder's; raises `LockNotOwnedError` if it lapsed."""
        ...


class AnswerCache(Protocol):
    """Where answers are kept between lookups, encoded as bytes."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, max_age: float) -> None: ...

    async def claim(self, key: str, ttl: float) -> Claim | None:
        """A claim when this caller is the one to fetch `key`; None while another holds it."""
        ...


class _InProcess:
    async def release(self) -> None:
        return None


class LocalCache:
    """A cache in this process. Claims always succeed: `Lookups` already coalesces in-process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[bytes, float]] = {}  # key -> (value, expires at)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._entries[key]
            return None
        return entry[0]

    async def put(self, key: str, value: bytes, max_age: float) -> None:
        now = self._clock()
        # Expired entries go when a new one comes, so the cache holds no more than max_age of answers.
        for stale in [k for k, (_, expires) in self._entries.items() if expires <= now]:
            del self._entries[stale]
        self._entries[key] = (value, now + max_age)

    async def claim(self, key: str, ttl: float) -> Claim | None:
        return _InProcess()


class RedisCache:
    """A cache and claims in Redis, shared by the replicas that use the same `prefix`."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(f"{self._prefix}cache:{key}")
        return value.encode() if isinstance(value, str) else value

    async def put(self, key: str, value: bytes, max_age: float) -> None:
        await self._redis.set(f"{self._prefix}cache:{key}", value, px=max(1, int(max_age * 1000)))

    async def claim(self, key: str, ttl: float) -> Claim | None:
        # The lock's value is a token of its own: a claim that lapsed while its holder was still
        # fetching, and was taken by another replica, is not deleted when the first one finishes.
        lock = self._redis.lock(f"{self._prefix}claim:{key}", timeout=ttl, blocking=False, thread_local=False)
        # A random token of our own: the lock's default, uuid1, costs more than the call to Redis.
        return lock if await lock.acquire(token=secrets.token_hex(16)) else None


class Lookups(Generic[T]):
    """Coalesced, cached lookups of one kind of answer (an order, say), keyed by a string."""

    def __init__(
        self,
        cache: AnswerCache,
        *,
        max_age: float,
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        claim_ttl: float = 30.0,
        poll_every: float = 0.05,
    ) -> None:
        self._cache = cache
        self._max_age = max_age
        self._encode, self._decode = encode, decode
        # How long another replica's claim holds us off: longer than its slowest fetch should take.
        self._claim_ttl = claim_ttl
        self._poll_every = poll_every
        self._in_flight: dict[str, asyncio.Task[T]] = {}

    async def get(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.create_task(self._lookup(key, fetch))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: one caller giving up (a client hanging up) must not cancel the others' answer.
        return await asyncio.shield(task)

    def _finished(self, key: str, task: asyncio.Task[T]) -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody waited for is not reported as lost

    async def _lookup(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        if self._max_age <= 0:
            return await fetch()
        cached = await self._cached(key)
        if cached is not None:
            return cached
        deadline = time.monotonic() + self._claim_ttl
        while (claim := await self._claim(key)) is None:
            # Another replica is fetching it: its answer will be in the cache soon.
            await asyncio.sleep(self._poll_every)
            cached = await self._cached(key)
            if cached is not None:
                return cached
            if time.monotonic() >= deadline:
                break  # its claim outlived its fetch (a crash?): fetch it ourselves
        try:
            if claim is not None:
                # Another replica may have stored the answer and let go between our read and our
                # claim: read once more before asking upstream.
                cached = await self._cached(key)
                if cached is not None:
                    return cached
            value = await fetch()
            await self._store(key, value)
            return value
        finally:
            if claim is not None:
                await self._release(key, claim)

    # The cache only saves upstream calls: when Redis fails, lookups go on without it.

    async def _cached(self, key: str) -> T | None:
        try:
            raw = await self._cache.get(key)
        except RedisError as error:
            log.warning("lookup_cache_unavailable", error=type(error).__name__)
            return None
        if raw is None:
            return None
        try:
            return self._decode(raw)
        except ValueError:  # written by another version of the service: fetch it afresh
            return None

    async def _store(self, key: str, value: T) -> None:
        try:
            await self._cache.put(key, self._encode(value), self._max_age)
        except RedisError as error:
            log.warning("lookup_cache_unavailable", error=type(error).__name__)

    async def _claim(self, key: str) -> Claim | None:
        try:
            return await self._cache.claim(key, self._claim_ttl)
        except RedisError as error:
            log.warning("lookup_cache_unavailable", error=type(error).__name__)
            return _InProcess()

    async def _release(self, key: str, claim: Claim) -> None:
        try:
            await claim.release()
        except LockNotOwnedError:
            # The fetch took longer than the claim lives: it lapsed, and may be another replica's now.
            log.info("lookup_claim_lapsed", claim_ttl=self._claim_ttl)
        except RedisError as error:
            log.warning("lookup_cache_unavailable", error=type(error).__name__)
