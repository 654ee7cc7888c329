"""The shared retry loop: what is retried, how long it waits, when it gives up."""

from __future__ import annotations

import random

import pytest

from app.connectors.retry import RetryPolicy, with_retries
from app.errors import OrderNotFound, UpstreamBadResponse, UpstreamRateLimited, UpstreamTimeout


class Flaky:
    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


async def test_temporary_errors_are_retried_until_success() -> None:
    call, sleeps = Flaky(UpstreamTimeout("slow"), UpstreamTimeout("slow")), Sleeps()
    assert await with_retries(call, RetryPolicy(), upstream="test", sleep=sleeps) == "ok"
    assert call.calls == 3
    assert len(sleeps) == 2


async def test_retry_after_is_honoured_exactly() -> None:
    call, sleeps = Flaky(UpstreamRateLimited("429", retry_after=3.5)), Sleeps()
    await with_retries(call, RetryPolicy(), upstream="test", sleep=sleeps)
    assert sleeps == [3.5]


async def test_a_retry_after_beyond_the_bound_is_not_waited_for() -> None:
    call, sleeps = Flaky(UpstreamRateLimited("429", retry_after=60)), Sleeps()
    with pytest.raises(UpstreamRateLimited):
        await with_retries(call, RetryPolicy(max_retry_after=20), upstream="test", sleep=sleeps)
    assert (call.calls, sleeps) == (1, [])


@pytest.mark.parametrize("error", [OrderNotFound("gone"), UpstreamBadResponse("garbage")])
async def test_permanent_errors_are_not_retried(error: Exception) -> None:
    call, sleeps = Flaky(error), Sleeps()
    with pytest.raises(type(error)):
        await with_retries(call, RetryPolicy(), upstream="test", sleep=sleeps)
    assert call.calls == 1


async def test_attempts_are_bounded() -> None:
    call, sleeps = Flaky(*[UpstreamTimeout("slow")] * 10), Sleeps()
    with pytest.raises(UpstreamTimeout):
        await with_retries(call, RetryPolicy(attempts=4), upstream="test", sleep=sleeps)
    assert call.calls == 4
    assert len(sleeps) == 3


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy, rng = RetryPolicy(base_delay=0.5, max_delay=4.0), random.Random(7)
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        waits = [policy.delay(retry, None, rng) for _ in range(200)]
        assert all(w is not None and ceiling / 2 <= w <= ceiling for w in waits)
        assert len({round(w, 6) for w in waits if w is not None}) > 100  # jittered, not fixed
