"""Retries for upstream calls: capped, jittered exponential backoff that honours Retry-After.

Only `UpstreamError`s marked `temporary` are retried, and only as many times as the policy says;
the caller decides whether a call is safe to repeat at all (a read is, a refund without an
idempotency key is not). A loop of its own, not tenacity's or stamina's: with the same policy each
spends more CPU on every call that succeeds at once than this loop does on a call retried twice
(bench/retries.py), and neither makes Retry-After or an injected sleep simpler.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from app import metrics
from app.errors import UpstreamError

T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # in all, the first one included
    base_delay: float = 0.25  # seconds before the first retry, doubled each time
    max_delay: float = 8.0  # no single wait is longer
    max_retry_after: float = 20.0  # a Retry-After beyond this is not waited for: the error goes up

    def delay(self, retry: int, retry_after: float | None, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before retry number `retry` (1-based), or None to give up now."""
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)  # "equal jitter": never a zero wait


NO_RETRY = RetryPolicy(attempts=1)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    upstream: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    retryable: Callable[[UpstreamError], bool] | None = None,
) -> T:
    """Run `call`, retrying temporary upstream errors as `policy` allows.

    `retryable` narrows what is retried, for calls that are safe to repeat only after some errors
    (a mutation without an idempotency key after a throttle that refused it, never after a timeout).
    """
    retry = 0
    while True:
        try:
            return await call()
        except UpstreamError as error:
            retry += 1
            safe = error.temporary and (retryable is None or retryable(error))
            wait = policy.delay(retry, error.retry_after) if safe else None
            if wait is None or retry >= policy.attempts:
                raise
            metrics.record_retry(upstream, error.code)
            log.info("upstream_retry", upstream=upstream, code=error.code, retry=retry, wait=round(wait, 3))
            await sleep(wait)
