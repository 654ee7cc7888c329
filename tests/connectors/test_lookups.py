"""Shared lookups: one call for concurrent requests, a cache bounded in age, shared through Redis."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from app.connectors.lookups import Claim, LocalCache, Lookups, RedisCache


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """Counts its calls; answers after a short delay, or fails while told to."""

    def __init__(self, delay: float = 0.02) -> None:
        self.calls = 0
        self.delay = delay
        self.failing = False
        self.started = asyncio.Event()

    async def fetch(self) -> str:
        self.calls += 1
        self.started.set()
        await asyncio.sleep(self.delay)
        if self.failing:
            raise LookupError("upstream failed")
        return f"answer {self.calls}"


def text_lookups(cache: LocalCache | RedisCache, max_age: float = 30.0) -> Lookups[str]:
    return Lookups[str](cache, max_age=max_age, encode=str.encode, decode=bytes.decode, poll_every=0.01)


async def test_concurrent_lookups_of_a_key_share_one_call() -> None:
    lookups, upstream = text_lookups(LocalCache()), Upstream()
    answers = await asyncio.gather(*(lookups.get("k", upstream.fetch) for _ in range(50)))
    assert upstream.calls == 1
    assert set(answers) == {"answer 1"}


async def test_different_keys_do_not_share() -> None:
    lookups, upstream = text_lookups(LocalCache()), Upstream()
    await asyncio.gather(lookups.get("a", upstream.fetch), lookups.get("b", upstream.fetch))
    assert upstream.calls == 2


async def test_answers_are_kept_no_longer_than_max_age() -> None:
    clock = Clock()
    lookups, upstream = text_lookups(LocalCache(clock), max_age=5), Upstream(delay=0)
    assert await lookups.get("k", upstream.fetch) == "answer 1"
    clock.now += 4.9
    assert await lookups.get("k", upstream.fetch) == "answer 1"
    clock.now += 0.2
    assert await lookups.get("k", upstream.fetch) == "answer 2"


async def test_max_age_zero_caches_nothing_but_still_coalesces() -> None:
    lookups, upstream = text_lookups(LocalCache(), max_age=0), Upstream()
    await asyncio.gather(*(lookups.get("k", upstream.fetch) for _ in range(5)))
    await lookups.get("k", upstream.fetch)
    assert upstream.calls == 2


async def test_an_error_reaches_every_waiter_and_is_not_cached() -> None:
    lookups, upstream = text_lookups(LocalCache()), Upstream()
    upstream.failing = True
    results = await asyncio.gather(
        *(lookups.get("k", upstream.fetch) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(result, LookupError) for result in results)
    upstream.failing = False
    assert await lookups.get("k", upstream.fetch) == "answer 2"


async def test_one_caller_giving_up_does_not_cancel_the_others() -> None:
    lookups, upstream = text_lookups(LocalCache()), Upstream(delay=0.05)
    impatient = asyncio.create_task(lookups.get("k", upstream.fetch))
    patient = asyncio.create_task(lookups.get("k", upstream.fetch))
    # Each caller joins the lookup in its first step, before the lookup's own task first runs.
    await asyncio.wait_for(upstream.started.wait(), 5)
    impatient.cancel()
    assert await patient == "answer 1"
    with pytest.raises(asyncio.CancelledError):
        await impatient


# --- Redis: the replicas share --------------------------------------------------------------


async def test_replicas_sharing_redis_make_one_call_between_them(redis: Redis, redis_prefix: str) -> None:
    upstream = Upstream(delay=0.1)
    replicas = [text_lookups(RedisCache(redis, redis_prefix)) for _ in range(3)]
    answers = await asyncio.gather(
        *(replica.get("k", upstream.fetch) for replica in replicas for _ in range(10))
    )
    assert upstream.calls == 1
    assert set(answers) == {"answer 1"}
    assert await redis.get(f"{redis_prefix}claim:k") is None  # released once answered


async def test_the_redis_cache_expires_with_max_age(redis: Redis, redis_prefix: str) -> None:
    upstream = Upstream(delay=0)
    lookups = text_lookups(RedisCache(redis, redis_prefix), max_age=0.2)
    await lookups.get("k", upstream.fetch)
    ttl = await redis.pttl(f"{redis_prefix}cache:k")
    assert 0 < ttl <= 200
    await lookups.get("k", upstream.fetch)
    assert upstream.calls == 1
    await asyncio.sleep(0.25)
    await lookups.get("k", upstream.fetch)
    assert upstream.calls == 2


async def test_when_the_replica_that_claimed_fails_another_fetches(redis: Redis, redis_prefix: str) -> None:
    first, second = Upstream(delay=0.05), Upstream(delay=0)
    first.failing = True
    replica_a = text_lookups(RedisCache(redis, redis_prefix))
    replica_b = text_lookups(RedisCache(redis, redis_prefix))
    claimed = asyncio.ensure_future(replica_a.get("k", first.fetch))
    await asyncio.wait_for(first.started.wait(), 5)  # replica a holds the claim before b asks
    failed, answered = await asyncio.gather(claimed, replica_b.get("k", second.fetch), return_exceptions=True)
    assert isinstance(failed, LookupError)
    assert answered == "answer 1"
    assert (first.calls, second.calls) == (1, 1)


async def test_lookups_go_on_without_redis() -> None:
    async with Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2) as dead:
        lookups, upstream = text_lookups(RedisCache(dead, "test:")), Upstream(delay=0)
        assert await lookups.get("k", upstream.fetch) == "answer 1"


class Held:
    """An upstream whose call waits until the test lets it go, then answers or fails."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.calls = 0
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def fetch(self) -> str:
        self.calls += 1
        self.started.set()
        await self.go.wait()
        if self.answer is None:
            raise LookupError("upstream failed")
        return self.answer


async def test_a_lapsed_claim_taken_by_another_replica_is_not_released_by_the_first(
    redis: Redis, redis_prefix: str
) -> None:
    claim_key = f"{redis_prefix}claim:k"
    slow_a, b, c = Held(answer=None), Held(answer="answer from b"), Held(answer="answer from c")
    replica_a, replica_b, replica_c = (text_lookups(RedisCache(redis, redis_prefix)) for _ in range(3))

    fetching_a = asyncio.ensure_future(replica_a.get("k", slow_a.fetch))
    await asyncio.wait_for(slow_a.started.wait(), 5)
    await redis.delete(claim_key)  # a's claim lapses (its time to live ran out) while a still fetches
    fetching_b = asyncio.ensure_future(replica_b.get("k", b.fetch))
    await asyncio.wait_for(b.started.wait(), 5)  # b holds the claim now
    slow_a.go.set()
    with pytest.raises(LookupError):
        await fetching_a  # a fails and releases: b's claim must outlive that

    assert await redis.get(claim_key) is not None
    waiting_c = asyncio.ensure_future(replica_c.get("k", c.fetch))
    b.go.set()
    assert await fetching_b == "answer from b"
    assert await asyncio.wait_for(waiting_c, 5) == "answer from b"  # c waited for b's answer
    assert c.calls == 0
    c.go.set()


class StalledRead(LocalCache):
    """A cache whose first read misses and then waits until told to go on: a replica that read
    the cache just before another one stored the answer and let go of its claim."""

    def __init__(self, shared: LocalCache, go_on: asyncio.Event) -> None:
        super().__init__()
        self._shared = shared
        self._go_on = go_on
        self._first = True

    async def get(self, key: str) -> bytes | None:
        if self._first:
            self._first = False
            answer = await self._shared.get(key)
            await self._go_on.wait()
            return answer
        return await self._shared.get(key)

    async def put(self, key: str, value: bytes, max_age: float) -> None:
        await self._shared.put(key, value, max_age)

    async def claim(self, key: str, ttl: float) -> Claim | None:
        return await self._shared.claim(key, ttl)


async def test_a_replica_that_claims_after_the_answer_was_stored_does_not_fetch_again() -> None:
    shared, go_on, upstream = LocalCache(), asyncio.Event(), Upstream(delay=0)
    late = text_lookups(StalledRead(shared, go_on))
    stalled = asyncio.create_task(late.get("k", upstream.fetch))
    await asyncio.sleep(0)  # it has read the cache (a miss) and waits there

    assert await text_lookups(shared).get("k", upstream.fetch) == "answer 1"  # stored, claim let go
    go_on.set()

    assert await stalled == "answer 1"
    assert upstream.calls == 1
