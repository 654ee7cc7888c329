"""Importing Amazon's returns report: lines matched to decisions by order id and SKU, outcomes settled.

A line matches the newest decision about its order that names its SKU (or names no SKU, and so
covers every line of the order). A line that matches nothing is kept with the reason, visible to
operators (`outcomes unmatched`, `GET /v1/outcomes/unmatched`), and matched later when a decision
about its order is made (`catch_up`). Each import is recorded with its counts and problems; one
import of a channel runs at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import outcomes as rows
from app.db.database import Database
from app.db.tables import OutcomeImport
from app.services import outcomes
from app.services.amazon_report import MAX_PROBLEMS, ReportLine, ReportUnreadable, document_text, parse

log = structlog.get_logger(__name__)

CHUNK = 500  # lines matched and written per transaction
# An import still marked running after this was left by a worker that stopped.
STALE_IMPORT = timedelta(hours=2)


@dataclass
class ImportSummary:
    channel: str
    report: str
    status: str = "succeeded"
    lines: int = 0
    matched: int = 0
    unmatched: int = 0
    invalid: int = 0
    decisions_settled: int = 0
    problems: list[str] = field(default_factory=list)
    error: str | None = None

    def counts(self) -> dict[str, int]:
        return {
            "lines": self.lines,
            "matched": self.matched,
            "unmatched": self.unmatched,
            "invalid": self.invalid,
            "decisions_settled": self.decisions_settled,
        }

    def describe(self) -> list[str]:
        head = f"{self.channel}: report {self.report} {self.status}"
        if self.error:
            return [f"{head}: {self.error}"]
        counts = ", ".join(f"{value} {name.replace('_', ' ')}" for name, value in self.counts().items())
        return [f"{head}: {counts}", *(f"  {problem}" for problem in self.problems)]


class ImportRunning(Exception):
    """Another import of the channel's report is running."""


async def import_document(
    database: Database,
    *,
    channel: str,
    currency: str,
    content: bytes,
    compression: str | None,
    report: str,
    source: str,
    data_start: datetime | None = None,
    data_end: datetime | None = None,
) -> ImportSummary:
    """Read, match and record one report document; a document that cannot be read is a failed
    import with its reason, never an exception."""
    import_id = await begin(database, channel, source, report, data_start, data_end)
    return await read_into(database, import_id, channel, currency, content, compression, report)


async def read_into(
    database: Database,
    import_id: uuid.UUID,
    channel: str,
    currency: str,
    content: bytes | None,
    compression: str | None,
    report: str,
) -> ImportSummary:
    """The rest of an import begun with `begin`: parse, match, record, settle, finish. `content`
    None: Amazon had nothing to report."""
    summary = ImportSummary(channel=channel, report=report)
    try:
        parsed = parse(document_text(content, compression)) if content is not None else None
    except ReportUnreadable as error:
        summary.status, summary.error = "failed", str(error)
        await finish(database, import_id, summary)
        log.warning("amazon_returns_report_unreadable", channel=channel, report=report, error=str(error))
        return summary
    if parsed is None:
        summary.problems.append("Amazon had no returns in the period (the report was cancelled)")
        await finish(database, import_id, summary)
        return summary
    summary.invalid = parsed.invalid
    summary.problems = list(parsed.problems)
    now = datetime.now(UTC)
    for first in range(0, len(parsed.lines), CHUNK):
        async with database.transaction() as session:
            await record_lines(
                session, channel, currency, parsed.lines[first : first + CHUNK], report, now, summary
            )
    await finish(database, import_id, summary)
    log.info("amazon_returns_report_imported", channel=channel, report=report, **summary.counts())
    return summary


async def fail(
    database: Database, import_id: uuid.UUID, channel: str, report: str, error: str
) -> ImportSummary:
    summary = ImportSummary(channel=channel, report=report, status="failed", error=error)
    await finish(database, import_id, summary)
    return summary


async def begin(
    database: Database,
    channel: str,
    source: str,
    report: str | None,
    data_start: datetime | None,
    data_end: datetime | None,
) -> uuid.UUID:
    now = datetime.now(UTC)
    started = OutcomeImport(
        id=uuid.uuid4(),
        channel=channel,
        source=source,
        report=report,
        data_start=data_start,
        data_end=data_end,
        started_at=now,
        status="running",
    )
    async with database.transaction() as session:
        await rows.abandon_stale_imports(session, now - STALE_IMPORT, now)
        if not await rows.begin_import(session, started):
            raise ImportRunning(f"an import of channel {channel}'s returns report is running already")
    return started.id


async def finish(database: Database, import_id: uuid.UUID, summary: ImportSummary) -> None:
    async with database.transaction() as session:
        await rows.finish_import(
            session,
            import_id,
            report=summary.report,
            status=summary.status,
            finished_at=datetime.now(UTC),
            counts=summary.counts(),
            problems={"problems": summary.problems[:MAX_PROBLEMS]},
            error=summary.error[:2000] if summary.error else None,
        )


async def record_lines(
    session: AsyncSession,
    channel: str,
    currency: str,
    lines: Sequence[ReportLine],
    report: str,
    now: datetime,
    summary: ImportSummary,
) -> None:
    """Match each line to a decision, keep every line (matched or not), settle what they concern."""
    matches = await match(session, channel, [(line.order_id, line.sku) for line in lines])
    records = []
    for line in lines:
        decision_id, problem = matches[(line.order_id, line.sku)]
        summary.lines += 1
        if decision_id is None:
            summary.unmatched += 1
        else:
            summary.matched += 1
        records.append(_record(channel, currency, line, decision_id, problem, report, now))
    await rows.record_report_rows(session, records)
    matched = {record["decision_id"] for record in records if record["decision_id"] is not None}
    if matched:
        summary.decisions_settled += await outcomes.settle_amazon(session, matched, now)


async def match(
    session: AsyncSession, channel: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[uuid.UUID | None, str | None]]:
    """For each (order id, SKU): the decision it belongs to, or None and why."""
    found: dict[str, list[tuple[datetime, uuid.UUID, set[str] | None]]] = {}
    for decision_id, order_id, created_at, request, snapshot in await rows.decisions_on_orders(
        session, channel, {order_id for order_id, _sku in keys}
    ):
        found.setdefault(order_id, []).append((created_at, decision_id, _skus(request, snapshot)))
    result: dict[tuple[str, str], tuple[uuid.UUID | None, str | None]] = {}
    for order_id, sku in keys:
        decisions = sorted(found.get(order_id, []), key=lambda d: (d[0], str(d[1])), reverse=True)
        if not decisions:
            result[(order_id, sku)] = (None, f"no decision about order {order_id} on {channel} (yet)")
            continue
        naming = [decision_id for _at, decision_id, skus in decisions if skus is None or sku in skus]
        if naming:
            result[(order_id, sku)] = (naming[0], None)
        else:
            result[(order_id, sku)] = (None, f"the decisions about order {order_id} do not name SKU {sku}")
    return result


def _skus(request: dict[str, Any], snapshot: dict[str, Any]) -> set[str] | None:
    """The SKUs a decision is about: its request's items, else every line of the order (None: the
    order's lines name no SKU, so any line of the order is its)."""
    items = request.get("items") or []
    named = {str(item["sku"]) for item in items if isinstance(item, dict) and item.get("sku")}
    if named:
        return named
    lines = {str(line["sku"]) for line in snapshot.get("lines", []) if line.get("sku")}
    return lines or None


def _record(
    channel: str,
    currency: str,
    line: ReportLine,
    decision_id: uuid.UUID | None,
    problem: str | None,
    report: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "channel": channel,
        "order_id": line.order_id,
        "sku": line.sku,
        "rma_id": line.rma_id,
        "decision_id": decision_id,
        "requested_on": line.requested_on,
        "delivered_on": line.delivered_on,
        "request_status": line.request_status,
        "resolution": line.resolution,
        "return_type": line.return_type[:64] if line.return_type else None,
        "return_reason": line.return_reason,
        "quantity": line.quantity,
        "in_policy": line.in_policy,
        "a_to_z_claim": line.a_to_z_claim,
        "refunded_amount": line.refunded_amount,
        "currency": currency,
        "outcome": line.outcome.value,
        "problem": problem[:500] if problem else None,
        "report": report[:255],
        "imported_at": now,
    }


async def match_late_lines(database: Database, limit: int = 500) -> int:
    """Match kept lines whose order got a decision since they were imported; how many matched."""
    async with database.transaction() as session:
        waiting = await rows.unmatched_with_decisions(session, limit)
        if not waiting:
            return 0
        matched = 0
        by_channel: dict[str, list[Any]] = {}
        for line in waiting:
            by_channel.setdefault(line.channel, []).append(line)
        settle = set()
        for channel, lines in by_channel.items():
            found = await match(session, channel, [(line.order_id, line.sku) for line in lines])
            for line in lines:
                decision_id, problem = found[(line.order_id, line.sku)]
                line.problem = problem[:500] if problem else None
                if decision_id is not None:
                    line.decision_id = decision_id
                    settle.add(decision_id)
                    matched += 1
        await session.flush()
        if settle:
            await outcomes.settle_amazon(session, settle, datetime.now(UTC))
    return matched
