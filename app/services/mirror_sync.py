"""Filling and refreshing one seller account's order mirror with searchOrders, in the worker.

First a backfill: the orders created in the last `MIRROR_DAYS` days, a page of 100 at a time. Then
incremental passes: the orders updated since the last pass's cutoff (less a few minutes of overlap),
every `MIRROR_SYNC_SECONDS`. Each page is committed with the token of the next one, so a worker that
stops or fails mid-pass resumes at the page it had not read. One worker syncs an account at a time
(a lease in the database); the searchOrders bucket is shared with every worker through Redis anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog

from app import metrics
from app.connectors.amazon_orders import order_from_amazon
from app.connectors.amazon_search import OrderSearch, Page, PageTokenRefused, Query
from app.db import mirror as rows
from app.db.database import Database, described
from app.db.tables import MirrorSync as SyncState
from app.errors import UpstreamError
from app.services.mirror import SellerAccount, copy_of, record_gauges
from app.services.stopping import pause, unless_stopped

log = structlog.get_logger(__name__)

# A lease outlasts the longest wait for a searchOrders token (one every 180 s) and the call itself.
LEASE = timedelta(minutes=10)
# Amazon may record an update a little after the time it carries: passes overlap by this much.
OVERLAP = timedelta(minutes=5)
# Amazon's cutoff when an answer does not state it: searchOrders covers up to two minutes ago.
SETTLING = timedelta(minutes=2)
FIRST_RETRY = 5.0  # seconds after a failed page; doubled up to the sync interval


class Phase(StrEnum):
    backfill = "backfill"
    incremental = "incremental"


class Step(StrEnum):
    page = "page"  # a page was read and more of the pass is due now
    done = "done"  # the pass is finished, or none is due yet
    elsewhere = "elsewhere"  # another worker holds the account's lease


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PassResult:
    held: int
    skipped: int


class MirrorSync:
    def __init__(
        self,
        database: Database,
        account: SellerAccount,
        search: OrderSearch,
        *,
        every: float,
        clock: Callable[[], datetime] = _now,
        owner: str | None = None,
    ) -> None:
        self._database = database
        self.account = account
        self._search = search
        self._every = timedelta(seconds=every)
        self._clock = clock
        self._owner = owner or secrets.token_hex(8)
        self._log = log.bind(account=account.name)
        self.due_in = 0.0  # seconds until the next pass is due, after a step that was `done`

    async def step(self) -> Step:
        """Read the next page due, if any, and commit it with where the sync then stands."""
        now = self._clock()
        async with self._database.transaction() as session:
            state = await rows.claim_sync(
                session, self.account.key, self._owner, now, now + LEASE, self._first_pass(now)
            )
        if state is None:
            return Step.elsewhere
        if state.phase == Phase.incremental and state.pagination_token is None:
            if state.last_sync_at is not None and now - state.last_sync_at < self._every:
                self.due_in = (self._every - (now - state.last_sync_at)).total_seconds()
                return Step.done
            state.pass_started_at = now  # a new incremental pass, from where the last one ended
        phase = Phase(state.phase)
        query = (
            Query(created_after=state.query_from)
            if phase is Phase.backfill
            else Query(last_updated_after=state.query_from)
        )
        asked_at = self._clock()
        try:
            page = await self._search.page(query, state.pagination_token)
        except PageTokenRefused as error:
            # A token lasts 24 hours: a pass left that long starts again (copies never go back in time).
            await self._advance({"pagination_token": None, "last_error": str(error)[:500]})
            self._log.warning("mirror_pass_restarted", phase=phase.value, error=str(error))
            raise
        except UpstreamError as error:
            await self._advance({"last_error": str(error)[:500]})
            raise
        await self._commit(state, phase, page, asked_at)
        self.due_in = self._every.total_seconds()
        return Step.page if page.next_token else Step.done

    def _first_pass(self, now: datetime) -> dict[str, Any]:
        return {
            "phase": Phase.backfill.value,
            "query_from": now - timedelta(days=self.account.mirror_days),
            "pass_started_at": now,
        }

    async def _commit(self, state: SyncState, phase: Phase, page: Page, asked_at: datetime) -> None:
        copies, skipped = self._copies(page.orders)
        values: dict[str, Any] = {
            "pages": state.pages + 1,
            "last_page_at": asked_at,
            "last_error": None,
            "pass_started_at": state.pass_started_at,
        }
        if page.next_token:
            values["pagination_token"] = page.next_token
        else:
            cutoff = min(page.cutoff or asked_at - SETTLING, asked_at)
            values |= {
                "phase": Phase.incremental.value,
                "pagination_token": None,
                "last_sync_at": asked_at,
                # A backfill confirms only what it read; changes made while it ran come in next.
                "query_from": (state.pass_started_at if phase is Phase.backfill else cutoff) - OVERLAP,
            }
            if phase is Phase.incremental:
                values["confirmed_through"] = cutoff
        async with self._database.transaction() as session:
            if not await rows.advance(session, self.account.key, self._owner, values):
                self._log.warning("mirror_lease_lost")  # another worker took the account over
                return
            await rows.hold(session, self.account.key, copies, asked_at)
            if not page.next_token:
                window = asked_at - timedelta(days=self.account.mirror_days)
                await rows.forget_older_than(session, self.account.key, window)
        self._log.info(
            "mirror_page",
            phase=phase.value,
            orders=len(copies),
            skipped=skipped,
            more=bool(page.next_token),
        )

    def _copies(self, orders: Sequence[Mapping[str, Any]]) -> tuple[list[rows.OrderCopy], int]:
        copies: list[rows.OrderCopy] = []
        skipped = 0
        for raw in orders:
            found = self.account.channel_for(raw)
            if found is None:
                reason = "marketplace"
            else:
                channel, assumed = found
                try:
                    copy = copy_of(order_from_amazon({"order": raw}, channel, sandbox=False, assumed=assumed))
                except UpstreamError:
                    copy = None  # getOrder will say what is wrong with it, to the request that needs it
                if copy is not None:
                    copies.append(copy)
                    continue
                reason = "unreadable"
            skipped += 1
            metrics.record_mirror_skip(self.account.name, reason)
        return copies, skipped

    async def _advance(self, values: dict[str, Any]) -> None:
        async with self._database.transaction() as session:
            await rows.advance(session, self.account.key, self._owner, values)

    async def release(self) -> None:
        async with self._database.transaction() as session:
            await rows.release_sync(session, self.account.key, self._owner)

    async def run(self, stop: asyncio.Event) -> None:
        """Sync until `stop` is set; a page in flight is abandoned, to be read again after a restart."""
        self._log.info("mirror_sync_started", every=self._every.total_seconds())
        failures = 0
        while not stop.is_set():
            step = await unless_stopped(stop, self.step())
            if step is None:
                break
            wait = self._every.total_seconds()
            try:
                result = step.result()
                failures = 0
                if result is Step.page:
                    wait = 0.0
                elif result is Step.done:
                    wait = self.due_in
            except Exception as error:  # noqa: BLE001 - Amazon or the database away: try again later
                failures += 1
                wait = min(self._every.total_seconds(), FIRST_RETRY * 2 ** (failures - 1))
                self._log.warning("mirror_sync_failed", error=described(error), wait=wait)
            with contextlib.suppress(Exception):
                await record_gauges(self._database, [self.account], self._clock())
            if wait:
                await pause(stop, wait)
        with contextlib.suppress(Exception):
            await self.release()
        self._log.info("mirror_sync_stopped")
