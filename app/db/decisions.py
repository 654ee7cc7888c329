"""Decisions: appended once, read back as they were answered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import (
    ColumnElement,
    Date,
    Row,
    Select,
    and_,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Decision as DecisionRow
from app.domain import Decision, Order, ReturnRequest
from app.errors import DatabaseUnavailable

# The customer's own words may hold personal data: they inform the decision and are never stored.
_NOT_STORED = {"customer_message"}

_COLUMNS = [column.name for column in DecisionRow.__table__.columns]
_INSERT = (
    f"INSERT INTO {DecisionRow.__tablename__} ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(_COLUMNS) + 1))})"
)
# What a lost or refused connection raises from asyncpg: the database's trouble, not a bug.
_CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
)


def _columns(
    decision: Decision, request: ReturnRequest, api_key_id: str | None, webhook_event_id: str | None = None
) -> dict[str, Any]:
    """The row's plain columns; the three documents are added by each way of writing it."""
    return dict(
        id=uuid.UUID(decision.decision_id),
        created_at=decision.created_at,
        as_of=decision.as_of,
        channel=decision.channel,
        platform=decision.platform.value,
        classification=decision.classification.value,
        order_ref=decision.order.order_ref,
        ticket_id=decision.ticket_id,
        reason=decision.reason.value,
        queue=decision.queue.name,
        eligible=decision.policy.eligible,
        sla_due_at=decision.queue.sla_due_at,
        policy_id=decision.policy.id,
        policy_version=decision.policy.version,
        sandbox=decision.sandbox,
        api_key_id=api_key_id,
        webhook_event_id=webhook_event_id,
    )


async def add(
    session: AsyncSession,
    decision: Decision,
    order: Order,
    request: ReturnRequest,
    api_key_id: str | None,
    webhook_event_id: str | None = None,
) -> dict[str, Any]:
    """Add the decision to the session's transaction; returns the answer as stored."""
    answer = decision.model_dump(mode="json")
    session.add(
        DecisionRow(
            **_columns(decision, request, api_key_id, webhook_event_id),
            answer=answer,
            order_snapshot=order.model_dump(mode="json"),
            request=request.model_dump(mode="json", exclude=_NOT_STORED),
        )
    )
    await session.flush()
    return answer


async def append(
    pool: asyncpg.Pool, decision: Decision, order: Order, request: ReturnRequest, api_key_id: str | None
) -> bytes:
    """Store the decision with one INSERT, committed on its own; returns the answer as JSON.

    For PostgreSQL and a request that writes nothing else. The answer is encoded once, for the
    row and for the response alike. A single statement is atomic, so nothing is half-written.
    """
    answer = decision.model_dump_json()
    values = {
        **_columns(decision, request, api_key_id),
        "answer": answer,
        "order_snapshot": order.model_dump_json(),
        "request": request.model_dump_json(exclude=_NOT_STORED),
    }
    try:
        await pool.execute(_INSERT, *(values[name] for name in _COLUMNS), timeout=30)
    except _CONNECTION_ERRORS as error:
        raise DatabaseUnavailable(
            "The database cannot be reached; retry shortly.", headers={"Retry-After": "5"}
        ) from error
    return answer.encode()


async def get(session: AsyncSession, decision_id: uuid.UUID) -> DecisionRow | None:
    return await session.get(DecisionRow, decision_id)


# --- Replay: stored merchant decisions, read back to be decided again under a draft policy ----------


async def for_replay(
    session: AsyncSession,
    channel: str,
    *,
    since: datetime | None = None,
    after: PagePosition | None = None,
    limit: int = 500,
) -> Sequence[Row[Any]]:
    """One page of `channel`'s decisions, oldest first, created at or after `since` and after the
    `(created_at, id)` of the previous page's last row. Only what a replay reads: no full rows.
    """
    query = (
        select(
            DecisionRow.id,
            DecisionRow.created_at,
            DecisionRow.as_of,
            DecisionRow.order_ref,
            DecisionRow.policy_id,
            DecisionRow.policy_version,
            DecisionRow.answer,
            DecisionRow.order_snapshot,
            DecisionRow.request,
        )
        .where(DecisionRow.channel == channel)
        .order_by(DecisionRow.created_at, DecisionRow.id)
        .limit(limit)
    )
    if since is not None:
        query = query.where(DecisionRow.created_at >= since)
    if after is not None:
        query = query.where(beyond(after, newest_first=False))
    return (await session.execute(query)).all()


# --- The dashboards: pages newest first, and counts by group ---------------------------


@dataclass(frozen=True)
class DecisionFilters:
    """The list's and the stats' filters; `None` leaves a field unfiltered."""

    channel: str | None = None
    classification: str | None = None
    queue: str | None = None
    eligible: bool | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    ticket_id: str | None = None
    order_ref: str | None = None
    api_key_id: str | None = None  # a key with only `route` sees the decisions it made

    def conditions(self) -> list[ColumnElement[bool]]:
        equal = {
            DecisionRow.channel: self.channel,
            DecisionRow.classification: self.classification,
            DecisionRow.queue: self.queue,
            DecisionRow.eligible: self.eligible,
            DecisionRow.ticket_id: self.ticket_id,
            DecisionRow.order_ref: self.order_ref,
            DecisionRow.api_key_id: self.api_key_id,
        }
        conditions = [column == value for column, value in equal.items() if value is not None]
        if self.created_after is not None:
            conditions.append(DecisionRow.created_at >= self.created_after)
        if self.created_before is not None:
            conditions.append(DecisionRow.created_at < self.created_before)
        return conditions


@dataclass(frozen=True)
class PagePosition:
    """The last decision of a page: the next page starts strictly after it."""

    created_at: datetime
    id: uuid.UUID


def beyond(position: PagePosition, *, newest_first: bool) -> ColumnElement[bool]:
    """The decisions after `position` in (created_at, id) order, in either direction.

    Spelt out rather than a row-value comparison, so each side binds through its column's type.
    """
    if newest_first:
        return or_(
            DecisionRow.created_at < position.created_at,
            and_(DecisionRow.created_at == position.created_at, DecisionRow.id < position.id),
        )
    return or_(
        DecisionRow.created_at > position.created_at,
        and_(DecisionRow.created_at == position.created_at, DecisionRow.id > position.id),
    )


@dataclass(frozen=True)
class ListedDecision:
    position: PagePosition
    answer: dict[str, Any]


async def list_newest_first(
    session: AsyncSession, filters: DecisionFilters, after: PagePosition | None, limit: int
) -> list[ListedDecision]:
    """One page of decisions, newest first over (created_at, id).

    A keyset, not an offset: decisions inserted while a reader pages are newer than its position
    (or committed behind it) and never shift or repeat what it reads next.
    """
    query = select(DecisionRow.created_at, DecisionRow.id, DecisionRow.answer).where(*filters.conditions())
    if after is not None:
        query = query.where(beyond(after, newest_first=True))
    query = query.order_by(DecisionRow.created_at.desc(), DecisionRow.id.desc()).limit(limit)
    rows = (await session.execute(query)).all()
    return [ListedDecision(PagePosition(created_at, id_), answer) for created_at, id_, answer in rows]


@dataclass(frozen=True)
class DecisionGroup:
    key: str
    count: int
    eligible: int
    sla_breached: int


async def count_by_group(
    session: AsyncSession, group_by: str, filters: DecisionFilters
) -> list[DecisionGroup]:
    """Counts per group, ordered by key. A decision is SLA-breached when it was made at or after its
    own response deadline (`sla_due_at <= created_at`): answers are not recorded, so a deadline
    missed after the decision cannot be seen yet."""
    key = _group_key(session, group_by)
    query: Select[tuple[Any, int, Any, Any]] = (
        select(
            key,
            func.count(),
            func.sum(case((DecisionRow.eligible, 1), else_=0)),
            func.sum(case((DecisionRow.sla_due_at <= DecisionRow.created_at, 1), else_=0)),
        )
        .where(*filters.conditions())
        .group_by(key)
        .order_by(key)
    )
    rows = (await session.execute(query)).all()
    return [
        DecisionGroup(key=str(k), count=int(n), eligible=int(eligible or 0), sla_breached=int(late or 0))
        for k, n, eligible, late in rows
    ]


def _group_key(session: AsyncSession, group_by: str) -> ColumnElement[Any]:
    if group_by == "day":
        # The UTC calendar day; SQLite keeps datetimes as UTC text, so its first ten characters are the day.
        if session.get_bind().dialect.name == "postgresql":
            # Written exactly as the statistics of migration 0003 name it (a literal, not a bound
            # parameter), so the planner knows there are few days and aggregates them in a hash.
            return cast(func.timezone(literal_column("'UTC'"), DecisionRow.created_at), Date)
        return func.substr(DecisionRow.created_at, 1, 10)
    columns = {
        "channel": DecisionRow.channel,
        "queue": DecisionRow.queue,
        "classification": DecisionRow.classification,
        "reason": DecisionRow.reason,
    }
    return columns[group_by].expression
