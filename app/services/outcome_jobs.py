"""The outcome work the worker does on a schedule, beside the webhook inbox.

- every minute, `catch_up`: Amazon report lines kept unmatched whose order now has a decision are
  matched, and their decisions settled (an outcome that came before its decision is picked up);
- every few minutes, `read_back`: Shopify decisions still open (or with nothing known) some days
  after they were made have their order's refunds and returns read from Shopify, a bounded batch
  per round, in one small query each, inside Shopify's cost limit;
- every few hours, `import_amazon`: Amazon's returns report of the last days is fetched through
  the Reports API for each live Amazon channel, when the last import is older than the interval.

Each round that fails is logged and tried again at the next; nothing here stops the worker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from app.channels import AmazonChannel, Channel
from app.connectors.amazon_reports import AmazonReports, ReportFailed
from app.connectors.registry import Connectors
from app.connectors.shopify_outcomes import order_outcome
from app.db import outcomes as rows
from app.db.database import Database, described
from app.errors import UpstreamError
from app.services import actions, amazon_import, outcomes
from app.services.amazon_import import ImportRunning, ImportSummary
from app.services.stopping import pause

log = structlog.get_logger(__name__)

CATCH_UP_EVERY = 60.0
READ_BACK_EVERY = 300.0
IMPORT_CHECK_EVERY = 600.0


@dataclass(frozen=True)
class Schedule:
    read_back_after: timedelta = timedelta(days=3)  # a decision this old and still open is read back
    read_back_again: timedelta = timedelta(days=1)  # and not again sooner than this
    read_back_batch: int = 20  # decisions per round
    import_every: timedelta = timedelta(hours=24)  # zero: never fetched by the worker
    import_days: int = 30  # the report covers this many days back


def _now() -> datetime:
    return datetime.now(UTC)


class OutcomeJobs:
    def __init__(
        self,
        database: Database,
        connectors: Connectors,
        reports: Mapping[str, AmazonReports],
        channels: Mapping[str, Channel],
        schedule: Schedule,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._database = database
        self._connectors = connectors
        self._reports = reports
        self._channels = channels
        self._schedule = schedule
        self._clock = clock

    async def catch_up(self) -> int:
        """Match report lines that came before their decision; how many were matched."""
        return await amazon_import.match_late_lines(self._database)

    async def read_back(self) -> int:
        """Read back one batch of Shopify decisions still open; how many were read."""
        now = self._clock()
        async with self._database.reading() as session:
            waiting = await rows.unresolved(
                session,
                "shopify",
                made_before=now - self._schedule.read_back_after,
                checked_before=now - self._schedule.read_back_again,
                limit=self._schedule.read_back_batch,
            )
        # Decisions about one order share its reading: one read of Shopify and one settle for them all.
        by_order: dict[tuple[str, str], list[uuid.UUID]] = {}
        for outcome in waiting:
            by_order.setdefault((outcome.channel, outcome.order_id), []).append(outcome.decision_id)
        for (channel, order_id), decision_ids in by_order.items():
            shopify = self._connectors.shopify(channel)
            seen: dict[str, object] = {"checked_at": now.isoformat(), "returns": []}
            if shopify is None:
                seen["note"] = "no live store to read (a sandbox channel)"
                found = None
            else:
                found = await order_outcome(shopify, order_id)
            async with self._database.transaction() as session:
                if found is not None:
                    for refund in found.refunds:
                        await actions.record_shopify_refund(
                            session,
                            channel=channel,
                            order_id=order_id,
                            refund_id=refund.refund_id,
                            amount=refund.amount,
                            created_at=refund.created_at,
                            note=refund.note,
                        )
                    seen["returns"] = [
                        {"return_id": r.return_id, "status": r.status, "exchanged": r.exchanged}
                        for r in found.returns
                    ]
                for decision_id in decision_ids:
                    await rows.mark_checked(session, decision_id, now, seen)
                await outcomes.settle_order(session, channel, order_id)
        return len(waiting)

    async def import_amazon(self, channel_key: str, *, force: bool = False) -> ImportSummary | None:
        """Fetch and import a channel's returns report, if the last import is older than the
        interval (or `force`); None when it was not due or another import is running."""
        reports = self._reports.get(channel_key)
        channel = self._channels.get(channel_key)
        if reports is None or not isinstance(channel, AmazonChannel):
            raise ValueError(f"channel {channel_key} is not a live Amazon channel")
        now = self._clock()
        if not force:
            if not self._schedule.import_every:
                return None
            async with self._database.reading() as session:
                last = await rows.last_import(session, channel_key, "reports_api")
            if last is not None and now - last.started_at < self._schedule.import_every:
                return None
        # Amazon wants the end in the past; a few minutes back covers clocks that differ.
        end = now - timedelta(minutes=5)
        start = end - timedelta(days=self._schedule.import_days)
        try:
            import_id = await amazon_import.begin(
                self._database, channel_key, "reports_api", None, start, end
            )
        except ImportRunning:
            return None
        try:
            document = await reports.returns_report(start, end)
        except (UpstreamError, ReportFailed) as error:
            summary = await amazon_import.fail(self._database, import_id, channel_key, "-", str(error))
            log.warning("amazon_returns_report_failed", channel=channel_key, error=str(error))
            return summary
        return await amazon_import.read_into(
            self._database,
            import_id,
            channel_key,
            channel.currency,
            document.content,
            document.compression,
            document.report_id,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Each job at its interval until `stop` is set."""
        jobs: list[tuple[str, float, Callable[[], Awaitable[object]]]] = [
            ("outcomes_catch_up", CATCH_UP_EVERY, self.catch_up),
            ("outcomes_read_back", READ_BACK_EVERY, self.read_back),
            ("outcomes_import_amazon", IMPORT_CHECK_EVERY, self._import_all),
        ]
        last = {name: -every for name, every, _job in jobs}
        while not stop.is_set():
            for name, every, job in jobs:
                if time.monotonic() - last[name] < every or stop.is_set():
                    continue
                last[name] = time.monotonic()
                try:
                    await job()
                except Exception as error:  # noqa: BLE001 - tried again at the next round
                    log.warning(f"{name}_failed", error=described(error)[:300])
            await pause(stop, 5.0)

    async def _import_all(self) -> None:
        for channel_key in self._reports:
            summary = await self.import_amazon(channel_key)
            if summary is not None:
                for line in summary.describe():
                    log.info("amazon_returns_report", line=line)
