"""Waiting in tests for something another task, thread or process does: a condition looked at on an
interval until it holds, with a deadline that fails the test, never a fixed sleep that hopes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def poll_until(
    what: str, condition: Callable[[], Awaitable[T | None]], *, within: float, every: float = 0.02
) -> T:
    """The first truthy answer of `condition`; fails the test when `within` seconds pass without one."""
    deadline = time.monotonic() + within
    while True:
        answer = await condition()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(every)


def poll_until_sync(what: str, condition: Callable[[], T | None], *, within: float, every: float = 0.05) -> T:
    """`poll_until` for synchronous code (a fixture that starts a process, a thread)."""
    deadline = time.monotonic() + within
    while True:
        answer = condition()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(every)
