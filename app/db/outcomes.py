"""Outcomes and the evidence they are settled from: reads and writes of the outcome rows, Amazon's
report lines and the report's imports. The stats' grouping query is in `outcome_stats.py`."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Action, AmazonReturnRow, Outcome, OutcomeImport, RuleSet, WebhookEvent
from app.db.tables import Decision as DecisionRow


async def get(session: AsyncSession, decision_id: uuid.UUID) -> Outcome | None:
    result = await session.execute(
        select(Outcome).where(Outcome.decision_id == decision_id).execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def on_order(session: AsyncSession, channel: str, order_id: str) -> Sequence[Outcome]:
    """The outcome rows of every decision about one order, oldest decision first."""
    result = await session.execute(
        select(Outcome)
        .where(Outcome.channel == channel, Outcome.order_id == order_id)
        .order_by(Outcome.created_at, Outcome.decision_id)
    )
    return result.scalars().all()


async def decisions_as_of(
    session: AsyncSession, decision_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    """The moment each decision was made for (`as_of`)."""
    if not decision_ids:
        return {}
    rows = await session.execute(
        select(DecisionRow.id, DecisionRow.as_of).where(DecisionRow.id.in_(decision_ids))
    )
    return {decision_id: as_of for decision_id, as_of in rows}


async def settle(session: AsyncSession, decision_id: uuid.UUID, values: dict[str, Any]) -> bool:
    """Write a decision's outcome; False when the decision has no outcome row."""
    result = await session.execute(update(Outcome).where(Outcome.decision_id == decision_id).values(**values))
    return bool(getattr(result, "rowcount", 0))


async def unresolved(
    session: AsyncSession, platform: str, made_before: datetime, checked_before: datetime, limit: int
) -> Sequence[Outcome]:
    """Decisions whose outcome is unknown or open, made before `made_before` and not read back
    since `checked_before`: the longest unchecked first."""
    result = await session.execute(
        select(Outcome)
        .where(
            Outcome.platform == platform,
            or_(Outcome.status.is_(None), Outcome.status == "open"),
            Outcome.created_at < made_before,
            or_(Outcome.checked_at.is_(None), Outcome.checked_at < checked_before),
        )
        .order_by(Outcome.checked_at.nulls_first(), Outcome.created_at)
        .limit(limit)
    )
    return result.scalars().all()


async def mark_checked(
    session: AsyncSession, decision_id: uuid.UUID, at: datetime, seen: dict[str, Any]
) -> None:
    """Remember a read-back: when, and what it saw of the order's returns."""
    row = await get(session, decision_id)
    if row is None:
        return
    detail = dict(row.detail or {})
    detail["seen"] = seen
    await session.execute(
        update(Outcome).where(Outcome.decision_id == decision_id).values(checked_at=at, detail=detail)
    )


async def rule_sets(session: AsyncSession, ids: Collection[int]) -> dict[int, list[str]]:
    if not ids:
        return {}
    rows = await session.execute(select(RuleSet.id, RuleSet.rules).where(RuleSet.id.in_(ids)))
    return {rule_set_id: list(rules.get("rules", [])) for rule_set_id, rules in rows}


# --- Amazon's returns report -------------------------------------------------------------------


async def record_report_rows(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Keep each line as last reported: a line seen again (same order, SKU and RMA) is replaced."""
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    key = ("channel", "order_id", "sku", "rma_id")
    # One statement for the lot; a line reported twice in it counts as its last (one row may not be
    # written twice by one upsert).
    last = list({tuple(row[name] for name in key): row for row in rows}.values())
    insert = dialect.insert(AmazonReturnRow).values(last)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=list(key),
            set_={name: insert.excluded[name] for name in last[0] if name not in key},
        )
    )


async def report_rows_of(session: AsyncSession, decision_id: uuid.UUID) -> Sequence[AmazonReturnRow]:
    return (await report_rows_by_decision(session, [decision_id])).get(decision_id, [])


async def report_rows_by_decision(
    session: AsyncSession, decision_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[AmazonReturnRow]]:
    """The report lines matched to each of `decision_ids`, in the order they were requested."""
    result = await session.execute(
        select(AmazonReturnRow)
        .where(AmazonReturnRow.decision_id.in_(decision_ids))
        .order_by(AmazonReturnRow.requested_on, AmazonReturnRow.sku)
    )
    found: dict[uuid.UUID, list[AmazonReturnRow]] = {}
    for row in result.scalars():
        assert row.decision_id is not None
        found.setdefault(row.decision_id, []).append(row)
    return found


async def with_decisions(
    session: AsyncSession, decision_ids: Collection[uuid.UUID]
) -> list[tuple[Outcome, DecisionRow]]:
    """The outcomes of `decision_ids`, each with its decision, read afresh."""
    result = await session.execute(
        select(Outcome, DecisionRow)
        .join(DecisionRow, DecisionRow.id == Outcome.decision_id)
        .where(Outcome.decision_id.in_(decision_ids))
        .execution_options(populate_existing=True)
    )
    return [(outcome, decision) for outcome, decision in result.all()]


async def unmatched_rows(session: AsyncSession, channel: str | None, limit: int) -> Sequence[AmazonReturnRow]:
    query = select(AmazonReturnRow).where(AmazonReturnRow.decision_id.is_(None))
    if channel is not None:
        query = query.where(AmazonReturnRow.channel == channel)
    query = query.order_by(AmazonReturnRow.imported_at.desc(), AmazonReturnRow.order_id).limit(limit)
    return (await session.execute(query)).scalars().all()


async def unmatched_with_decisions(session: AsyncSession, limit: int) -> Sequence[AmazonReturnRow]:
    """Unmatched lines whose order has a decision now: a decision made after the report came in."""
    decided = select(Outcome.decision_id).where(
        and_(Outcome.channel == AmazonReturnRow.channel, Outcome.order_id == AmazonReturnRow.order_id)
    )
    result = await session.execute(
        select(AmazonReturnRow).where(AmazonReturnRow.decision_id.is_(None), decided.exists()).limit(limit)
    )
    return result.scalars().all()


async def count_unmatched(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(AmazonReturnRow.channel, func.count())
        .where(AmazonReturnRow.decision_id.is_(None))
        .group_by(AmazonReturnRow.channel)
    )
    return {channel: int(count) for channel, count in rows}


# --- Imports of the report ----------------------------------------------------------------------


async def begin_import(session: AsyncSession, started: OutcomeImport) -> bool:
    """Record an import as running; False when another import of the channel is running."""
    try:
        async with session.begin_nested():
            session.add(started)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def finish_import(session: AsyncSession, import_id: uuid.UUID, **values: Any) -> None:
    await session.execute(update(OutcomeImport).where(OutcomeImport.id == import_id).values(**values))


async def abandon_stale_imports(session: AsyncSession, started_before: datetime, now: datetime) -> int:
    """Imports left running by a worker that stopped: failed, so the next one may start."""
    result = await session.execute(
        update(OutcomeImport)
        .where(OutcomeImport.status == "running", OutcomeImport.started_at < started_before)
        .values(status="failed", finished_at=now, error="abandoned: the worker running it stopped")
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def last_import(session: AsyncSession, channel: str, source: str) -> OutcomeImport | None:
    result = await session.execute(
        select(OutcomeImport)
        .where(OutcomeImport.channel == channel, OutcomeImport.source == source)
        .order_by(OutcomeImport.started_at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def decisions_about_return(session: AsyncSession, return_id: str) -> set[uuid.UUID]:
    """The decisions a Shopify Return concerns: the one its `returns/request` made, and those whose
    exchange action created it."""
    caused = await session.execute(
        select(DecisionRow.id)
        .join(WebhookEvent, WebhookEvent.id == DecisionRow.webhook_event_id)
        .where(WebhookEvent.subject == return_id)
    )
    made = await session.execute(
        select(Action.decision_id).where(Action.shopify["return_id"].as_string() == return_id)
    )
    return {*caused.scalars(), *made.scalars()}


async def decisions_on_orders(
    session: AsyncSession, channel: str, order_ids: Collection[str]
) -> Sequence[tuple[uuid.UUID, str, datetime, dict[str, Any], dict[str, Any]]]:
    """(decision id, order id, created at, request, order snapshot) of each decision on these orders."""
    if not order_ids:
        return []
    rows = await session.execute(
        select(
            Outcome.decision_id,
            Outcome.order_id,
            Outcome.created_at,
            DecisionRow.request,
            DecisionRow.order_snapshot,
        )
        .join(DecisionRow, DecisionRow.id == Outcome.decision_id)
        .where(Outcome.channel == channel, Outcome.order_id.in_(order_ids))
    )
    return [tuple(row) for row in rows]
