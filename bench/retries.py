"""CPU per upstream call spent in the retry loop: the service's own (`app.connectors.retry`) against the
same policy written with tenacity and with stamina.

    .venv/bin/python bench/retries.py [--calls 20000]

Two cases, each timed as the best of five runs of --calls calls in one process, on uvloop as under
uvicorn: a call that succeeds at once (every upstream call pays this), and one that fails twice with
a temporary error before it succeeds (waits of zero, so only the loop's own work is timed). The call
itself does nothing, so the figures are the loop's cost alone; compare them with an outbound call's
CPU (bench/outbound.py). All three honour the same policy: temporary errors only, the attempts bound,
Retry-After up to a bound, otherwise jittered exponential backoff. The libraries are not the
service's dependencies: `.venv/bin/pip install stamina tenacity` first.
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import stamina
import structlog
import uvloop
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

from app import metrics
from app.connectors.retry import RetryPolicy, log, with_retries
from app.errors import UpstreamError, UpstreamTimeout

T = TypeVar("T")
POLICY = RetryPolicy()


class _RetryAfterBeyondBound(stop_base):
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, state: RetryCallState) -> bool:
        return self.policy.delay(state.attempt_number, _error(state).retry_after) is None


def _error(state: RetryCallState) -> UpstreamError:
    assert state.outcome is not None
    error = state.outcome.exception()
    assert isinstance(error, UpstreamError)
    return error


def record(state: RetryCallState) -> None:
    error = _error(state)
    metrics.record_retry("bench", error.code)
    log.info("upstream_retry", upstream="bench", code=error.code, retry=state.attempt_number, wait=0.0)


async def with_tenacity(
    call: Callable[[], Awaitable[T]], policy: RetryPolicy, *, sleep: Callable[[float], Awaitable[None]]
) -> T:
    """The service's policy as tenacity runs it: its stop, wait and retry predicates, its loop."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(lambda error: isinstance(error, UpstreamError) and error.temporary),
        stop=stop_after_attempt(policy.attempts) | _RetryAfterBeyondBound(policy),
        wait=lambda state: policy.delay(state.attempt_number, _error(state).retry_after) or 0.0,
        sleep=sleep,
        before_sleep=record,  # what the service's loop does before each wait
        reraise=True,
    )
    # Not `retrying(call)`: tenacity 9.2 takes a lambda returning a coroutine for a synchronous call.
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable")


async def with_stamina(call: Callable[[], Awaitable[T]], policy: RetryPolicy, *, zero_waits: bool) -> T:
    """The service's policy as stamina runs it: a backoff hook for Retry-After and the bound."""

    def hook(error: Exception) -> bool | float:
        if not (isinstance(error, UpstreamError) and error.temporary):
            return False
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= policy.max_retry_after else False
        return True

    waits = 0.0 if zero_waits else policy.base_delay
    async for attempt in stamina.retry_context(
        on=hook,
        attempts=policy.attempts,
        timeout=None,
        wait_initial=waits,
        wait_max=0.0 if zero_waits else policy.max_delay,
        wait_jitter=waits,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable")


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.left = failures

    async def __call__(self) -> str:
        if self.left:
            self.left -= 1
            raise UpstreamTimeout("slow")
        self.left = self.failures
        return "ok"


async def no_wait(seconds: float) -> None:
    return None


async def per_call(run: Callable[[], Awaitable[str]], calls: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(calls):
            await run()
        best = min(best, (time.process_time() - started) / calls)
    return best * 1e6


async def main(calls: int) -> None:
    print(f"{'':<28} {'at once':>10} {'2 retries':>10}   (µs of CPU per call, best of 5 x {calls})")
    loops: dict[str, Callable[[Flaky], Awaitable[str]]] = {
        "app.connectors.retry": lambda call: with_retries(call, POLICY, upstream="bench", sleep=no_wait),
        "tenacity": lambda call: with_tenacity(call, POLICY, sleep=no_wait),
        "stamina": lambda call: with_stamina(call, POLICY, zero_waits=True),
    }
    for name, loop in loops.items():
        ok, flaky = Flaky(0), Flaky(2)
        at_once = await per_call(functools.partial(loop, ok), calls)
        retried = await per_call(functools.partial(loop, flaky), calls // 10)
        print(f"{name:<28} {at_once:>10.1f} {retried:>10.1f}")


if __name__ == "__main__":
    # Log lines are not the loop's cost: all three would write theirs (stamina its own, at warning).
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20_000)
    uvloop.run(main(parser.parse_args().calls))
