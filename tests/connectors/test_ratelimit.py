"""Token buckets: in-process on a fake clock, and in Redis (atomic, on Redis's clock)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from app.connectors.ratelimit import Limit, LocalBuckets, RateLimiter, RedisBuckets
from app.errors import RateLimitWaitTooLong, UpstreamUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


LIMIT = Limit(rate=2.0, burst=3)


async def test_the_burst_goes_at_once_then_one_token_every_1_over_rate() -> None:
    buckets = LocalBuckets(Clock())
    waits = [(await buckets.reserve("k", LIMIT, max_wait=10)).wait for _ in range(6)]
    assert waits == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5]


async def test_tokens_come_back_with_time_up_to_the_burst() -> None:
    clock = Clock()
    buckets = LocalBuckets(clock)
    for _ in range(3):
        await buckets.reserve("k", LIMIT, max_wait=0)
    clock.now += 1.0  # two tokens back
    assert [(await buckets.reserve("k", LIMIT, max_wait=0)).granted for _ in range(3)] == [True, True, False]
    clock.now += 100  # never more than the burst
    assert [(await buckets.reserve("k", LIMIT, max_wait=0)).granted for _ in range(4)] == [True] * 3 + [False]


async def test_a_refused_reservation_takes_nothing() -> None:
    buckets = LocalBuckets(Clock())
    for _ in range(3):
        await buckets.reserve("k", LIMIT, max_wait=0)
    refused = await buckets.reserve("k", LIMIT, max_wait=0.1)
    assert (refused.granted, refused.wait) == (False, 0.5)
    granted = await buckets.reserve("k", LIMIT, max_wait=1)
    assert (granted.granted, granted.wait) == (True, 0.5)


async def test_buckets_are_separate_per_key() -> None:
    buckets = LocalBuckets(Clock())
    for _ in range(3):
        await buckets.reserve("seller-a:getOrder", LIMIT, max_wait=0)
    assert (await buckets.reserve("seller-b:getOrder", LIMIT, max_wait=0)).wait == 0.0


async def test_drain_empties_the_bucket_but_keeps_reservations_made() -> None:
    buckets = LocalBuckets(Clock())
    await buckets.drain("k", LIMIT)
    assert (await buckets.reserve("k", LIMIT, max_wait=10)).wait == 0.5
    await buckets.drain("k", LIMIT)  # already in debt: stays so
    assert (await buckets.reserve("k", LIMIT, max_wait=10)).wait == 1.0


async def test_the_limiter_sleeps_its_turn_or_refuses_with_retry_after() -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    limiter = RateLimiter(LocalBuckets(Clock()), "k", LIMIT, max_wait=1.0, upstream="test", sleep=sleep)
    for _ in range(5):
        await limiter.acquire()
    assert sleeps == [0.5, 1.0]
    with pytest.raises(RateLimitWaitTooLong) as raised:
        await limiter.acquire()
    assert (raised.value.status, raised.value.code, raised.value.temporary) == (
        503,
        "upstream_rate_limited",
        False,
    )
    assert raised.value.headers["Retry-After"] == "1"


def test_a_limit_needs_a_rate_and_a_burst() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        Limit(rate=0, burst=30)
    with pytest.raises(ValueError, match="burst"):
        Limit(rate=0.5, burst=0)


# --- Redis -------------------------------------------------------------------------------------


async def test_redis_bucket_grants_the_burst_then_queues_atomically(redis: Redis, redis_prefix: str) -> None:
    buckets = RedisBuckets(redis, redis_prefix)
    limit = Limit(rate=10.0, burst=5)
    reservations = await asyncio.gather(*(buckets.reserve("k", limit, max_wait=10) for _ in range(15)))
    waits = sorted(r.wait for r in reservations)
    assert all(r.granted for r in reservations)
    assert waits[:5] == [0.0] * 5
    # Every queued caller has its own slot, 0.1 s apart: no two read the same state. A wait is its
    # slot less the time its reservation ran, and a busy machine spreads those runs over some
    # milliseconds: waits may come out shorter than the slots, never longer.
    queued = waits[5:]
    gaps = [later - earlier for earlier, later in zip(queued, queued[1:], strict=False)]
    assert all(0.05 < gap < 0.11 for gap in gaps), gaps
    assert 0.05 < queued[0] < 0.11
    assert queued[-1] < 1.0 + 0.05


async def test_redis_bucket_refuses_beyond_max_wait_and_drains(redis: Redis, redis_prefix: str) -> None:
    buckets = RedisBuckets(redis, redis_prefix)
    limit = Limit(rate=1.0, burst=2)
    assert [(await buckets.reserve("k", limit, max_wait=0)).granted for _ in range(3)] == [True, True, False]
    await buckets.drain("other", limit)
    refused = await buckets.reserve("other", limit, max_wait=0.5)
    assert not refused.granted
    assert 0.5 < refused.wait <= 1.0  # the next token, a second after the drain, less the time since
    ttl = await redis.pttl(f"{redis_prefix}bucket:k")
    assert 0 < ttl <= 3000  # gone once it would be full again


async def test_redis_down_is_upstream_unavailable_not_a_crash() -> None:
    async with Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5) as dead:
        with pytest.raises(UpstreamUnavailable):
            await RedisBuckets(dead, "test:").reserve("k", LIMIT, max_wait=1)
