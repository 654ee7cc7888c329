"""What-if replays: a channel's stored decisions decided again under a draft policy. Nothing is written.

Reading a draft and deciding stored returns under it is CPU work. For the API it runs in a worker
process at low priority, never on the event loop that serves routing (a thread would hold the GIL
against it), and within bounds: the draft within the policy reader's (size, nesting, aliases, rules),
the replay within a count of decisions and a time budget, after which it answers with what it has
(`truncated`). The command line replays in its own process, with the same reader.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import structlog
from sqlalchemy import Row

from app.channels import Channel, ShopifyChannel
from app.db import decisions
from app.db.database import Database
from app.domain import Market
from app.errors import SimulationUnavailable, ValidationProblem
from app.policy import PolicyBook
from app.policy.merchant import MerchantPolicy
from app.policy.policy_file import parse_policy
from app.policy.replay import Redecided, Replay, ReplaySummary, StoredDecision, Tally, redecide

T = TypeVar("T")
log = structlog.get_logger(__name__)

PAGE = 500  # stored decisions read at a time
BATCH = 50  # decided in one job of a worker
TIME_BUDGET = 10.0  # seconds a simulation may take, reading the draft included; then it answers what it has
GRACE = 5.0  # a worker that has not answered this long after the budget is stuck: it is stopped
MAX_RUNNING = 4  # simulations in one API process at once; more are told to come back


def merchant_channel(channels: Mapping[str, Channel], key: str | None) -> ShopifyChannel:
    """The merchant channel named `key`, or the only one when `key` is None."""
    merchant = {name: channel for name, channel in channels.items() if isinstance(channel, ShopifyChannel)}
    if key is None and len(merchant) == 1:
        return next(iter(merchant.values()))
    if key is not None and key in merchant:
        return merchant[key]
    known = ", ".join(sorted(merchant)) or "none"
    problem = "name one" if key is None else f"{key!r} is not one (a platform's policy is not a draft)"
    raise ValidationProblem(
        f"A replay runs on a merchant channel ({known}): {problem}.",
        errors=[
            {"loc": ["body", "channel"], "msg": f"merchant channels: {known}", "type": "unknown_channel"}
        ],
    )


def draft_book(book: PolicyBook, channel: str, text: str, *, source: str) -> tuple[PolicyBook, str]:
    """`book` with the draft in `text` for the merchant channel `channel`, and the draft's id@version.

    Raises `PolicyFileError` naming `source`, the line and the problem when the draft is not a policy.
    """
    draft = parse_policy(text, MerchantPolicy, source=source)
    return book.with_merchant(channel, draft, source=source), draft.ref


async def replay(
    database: Database,
    book: PolicyBook,
    channel: ShopifyChannel,
    draft_ref: str,
    *,
    since: datetime | None = None,
    limit: int | None = None,
    examples: int = 5,
) -> ReplaySummary:
    """Decide `channel`'s stored decisions (oldest first, at most `limit`) again with `book`, here.

    For the command line, whose process serves nobody else; the API uses `simulate`.
    """
    run = Replay(book, channel.market, draft_ref, since=since, examples_wanted=examples)
    async for page in _stored_pages(database, channel.key, run.tally, since=since, limit=limit):
        run.run(page)
    return run.summary()


# --- The API: drafts in a worker process ------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """What a worker needs to rebuild the draft's book: sent with each job, read once per worker."""

    text: str
    source: str
    market: Market  # the merchant channel's: what deciding needs of it, never its credentials
    routing_file: Path

    @property
    def key(self) -> tuple[str, str, str]:
        digest = hashlib.sha256(self.text.encode()).hexdigest()
        return str(self.routing_file), self.market.channel, digest


@dataclass(frozen=True)
class Batch:
    redecided: list[Redecided]
    finished: bool  # False when the budget ran out before the batch's last decision


class DraftWorkers:
    """The process pool that reads drafts and decides under them, started on first use."""

    def __init__(self, *, workers: int = 1, max_running: int = MAX_RUNNING, grace: float = GRACE) -> None:
        self._workers = workers
        self._max_running = max_running
        self._grace = grace
        self._running = 0
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Spawned, not forked: a fork of a process running an event loop and threads copies their
            # locks in whatever state they are in.
            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=get_context("spawn"), initializer=_lower_priority
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _stop(self, pool: Executor) -> None:
        """Stop a pool whose worker did not answer in time (a bug: each step is bounded) and start afresh."""
        processes = getattr(pool, "_processes", None) or {}
        for process in list(processes.values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        if self._pool is pool:
            self._pool = None

    async def run(self, work: Callable[..., T], *args: Any, ends_at: float) -> T:
        """`work(*args)` in a worker; `SimulationUnavailable` if it has not answered by `ends_at` + grace."""
        pool = self._executor()
        try:
            future = pool.submit(work, *args)
            wait = max(0.0, ends_at - time.time()) + self._grace
            return await asyncio.wait_for(asyncio.wrap_future(future), wait)
        except TimeoutError:
            log.error("draft_worker_stuck", work=getattr(work, "__name__", str(work)))
            self._stop(pool)
            raise SimulationUnavailable(
                "The simulation did not finish in time; try a smaller draft or fewer decisions.",
                headers={"Retry-After": str(round(TIME_BUDGET))},
            ) from None
        except BrokenProcessPool:  # a worker died (killed, out of memory): the next call starts another
            self._stop(pool)
            raise SimulationUnavailable(
                "The simulation's worker stopped; retry shortly.", headers={"Retry-After": "5"}
            ) from None

    def admit(self) -> None:
        if self._running >= self._max_running:
            raise SimulationUnavailable(
                f"{self._running} simulations are running; retry when one has finished.",
                headers={"Retry-After": str(round(TIME_BUDGET))},
            )
        self._running += 1

    def done(self) -> None:
        self._running -= 1


DRAFTS = DraftWorkers()


async def simulate(
    database: Database,
    draft: Draft,
    *,
    since: datetime | None = None,
    limit: int,
    examples: int = 5,
    workers: DraftWorkers = DRAFTS,
) -> ReplaySummary:
    """Decide the draft's channel's stored decisions (oldest first, at most `limit`) again under the draft,
    in a worker process, for at most TIME_BUDGET seconds.

    Raises `PolicyFileError` when the draft is not a policy, `SimulationUnavailable` when too many
    simulations are running or a worker fails.
    """
    ends_at = time.time() + TIME_BUDGET
    workers.admit()
    try:
        draft_ref = await workers.run(check_draft, draft, ends_at=ends_at)
        tally = Tally(draft.market.channel, draft_ref, since=since, examples_wanted=examples)
        async for stored in _stored_pages(database, draft.market.channel, tally, since=since, limit=limit):
            # In small batches, one at a time: simulations running together take turns in the worker.
            for start in range(0, len(stored), BATCH):
                batch = stored[start : start + BATCH]
                decided = await workers.run(decide_batch, draft, batch, ends_at, ends_at=ends_at)
                for redecided in decided.redecided:
                    tally.count(redecided)
                if not decided.finished:
                    tally.truncated = True
                    return tally.summary()
        return tally.summary()
    finally:
        workers.done()


# What runs in the worker: each worker keeps the books it built, so a draft is read once per worker.

_books: dict[tuple[str, str, str], tuple[PolicyBook, str]] = {}
_bases: dict[str, PolicyBook] = {}
KEPT_DRAFTS = 4


def _lower_priority() -> None:
    os.nice(10)  # routing, in the API process, comes first when the cores are busy


def _draft_book(draft: Draft) -> tuple[PolicyBook, str]:
    key = draft.key
    found = _books.get(key)
    if found is None:
        base = _bases.get(key[0])
        if base is None:
            base = _bases[key[0]] = PolicyBook.load({}, routing_file=draft.routing_file)
        found = draft_book(base, draft.market.channel, draft.text, source=draft.source)
        while len(_books) >= KEPT_DRAFTS:
            del _books[next(iter(_books))]
        _books[key] = found
    return found


def check_draft(draft: Draft) -> str:
    """The draft's id@version once it is read and its book built; `PolicyFileError` when it is no policy."""
    return _draft_book(draft)[1]


def decide_batch(draft: Draft, stored: list[StoredDecision], ends_at: float) -> Batch:
    """`stored` decided again under the draft, as many as `ends_at` (a `time.time()`) leaves time for."""
    book, _ = _draft_book(draft)
    redecided: list[Redecided] = []
    for decision in stored:
        if time.time() >= ends_at:
            return Batch(redecided, finished=False)
        redecided.append(redecide(book, draft.market, decision))
    return Batch(redecided, finished=True)


# --- Reading stored decisions -----------------------------------------------------------


async def _stored_pages(
    database: Database,
    channel: str,
    tally: Tally,
    *,
    since: datetime | None,
    limit: int | None,
) -> AsyncIterator[list[StoredDecision]]:
    """The channel's stored decisions, oldest first, a page at a time; marks `tally` truncated when
    `limit` stops them before the last."""
    after: decisions.PagePosition | None = None
    read = 0
    while True:
        size = PAGE if limit is None else min(PAGE, limit - read)
        # A session per page: no connection is held while the page is decided.
        async with database.reading() as session:
            rows = await decisions.for_replay(session, channel, since=since, after=after, limit=max(size, 1))
        if size == 0:
            tally.truncated = bool(rows)
            return
        if not rows:
            return
        yield [_stored(row) for row in rows]
        read += len(rows)
        after = decisions.PagePosition(rows[-1].created_at, rows[-1].id)


def _stored(row: Row[Any]) -> StoredDecision:
    return StoredDecision(
        decision_id=str(row.id),
        order_ref=row.order_ref,
        as_of=row.as_of,
        policy_ref=f"{row.policy_id}@{row.policy_version}",
        answer=row.answer,
        order_snapshot=row.order_snapshot,
        request=row.request,
    )
