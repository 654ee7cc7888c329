"""Decisions: saved once, read back as they were answered."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Row,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.types import TypeDecorator

from app.db import outcome_facts
from app.db.database import Database
from app.db.tables import Decision as DecisionRow
from app.db.tables import Document, IdempotencyRecord, as_utc
from app.domain import Decision, Order, ReturnRequest

# The customer's own words may hold personal data: they inform the decision and are never stored.
_NOT_STORED = {"customer_message"}

_COLUMNS = [column.name for column in DecisionRow.__table__.columns]
_DOCUMENTS = ("answer", "order_snapshot", "request")


class _EncodedDocument(TypeDecorator[str]):
    """A JSON document bound as the JSON text it already is: encoded once, for the row and the answer."""

    impl = Document
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


@dataclass(frozen=True)
class Origin:
    """Who asked for a decision (the audit trail): an API key, or the Shopify webhook that caused it."""

    api_key_id: str | None = None
    webhook_event_id: str | None = None


@dataclass(frozen=True)
class Completes:
    """The idempotency record a saved decision answers, completed in the same statement or transaction."""

    api_key_id: str
    key: str
    status: int


@dataclass(frozen=True)
class Encoded:
    """A decision as it is stored and answered: the row's values, the answer's JSON among them, and
    the outcome row it is stored with."""

    values: dict[str, Any]
    facts: outcome_facts.Facts

    @property
    def answer(self) -> str:
        answer: str = self.values["answer"]
        return answer


def encode(decision: Decision, order: Order, request: ReturnRequest, origin: Origin) -> Encoded:
    """The one serialiser: the answer is encoded once, and what is stored is what is answered."""
    return Encoded(
        dict(
            id=uuid.UUID(decision.decision_id),
            created_at=as_utc(decision.created_at),
            as_of=as_utc(decision.as_of),
            channel=decision.channel,
            platform=decision.platform.value,
            classification=decision.classification.value,
            order_ref=decision.order.order_ref,
            ticket_id=decision.ticket_id,
            reason=decision.reason.value,
            queue=decision.queue.name,
            eligible=decision.policy.eligible,
            sla_due_at=as_utc(decision.queue.sla_due_at),
            policy_id=decision.policy.id,
            policy_version=decision.policy.version,
            sandbox=decision.sandbox,
            api_key_id=origin.api_key_id,
            webhook_event_id=origin.webhook_event_id,
            answer=decision.model_dump_json(),
            order_snapshot=order.model_dump_json(),
            request=request.model_dump_json(exclude=_NOT_STORED),
        ),
        outcome_facts.facts_of(decision, order),
    )


_INSERT = insert(DecisionRow).values(
    {name: bindparam(name, type_=_EncodedDocument() if name in _DOCUMENTS else None) for name in _COLUMNS}
)
_COMPLETE = (
    update(IdempotencyRecord)
    .where(
        IdempotencyRecord.api_key_id == bindparam("k_api_key_id"), IdempotencyRecord.key == bindparam("k_key")
    )
    .values(
        response_status=bindparam("k_status"),
        response_body=bindparam("answer", type_=_EncodedDocument()),
        locked_until=None,
    )
)
# PostgreSQL: the same as one statement on the driver's connection, atomic on its own, with the
# decision's outcome row (data-modifying CTEs); the second form also completes the idempotency record.
_N = len(_COLUMNS)
_PG_SAVED = (
    f"WITH saved AS (INSERT INTO {DecisionRow.__tablename__} ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, _N + 1))}) RETURNING id), "
    f"{outcome_facts.pg_ctes(first=_N + 1)} "
)
_K = _N + outcome_facts.PG_PARAMETERS  # the idempotency record's parameters follow
_PG_INSERT = _PG_SAVED + "SELECT 1"
_PG_INSERT_AND_COMPLETE = (
    f"{_PG_SAVED}UPDATE {IdempotencyRecord.__tablename__} SET response_status = ${_K + 1}, "
    f"response_body = ${_COLUMNS.index('answer') + 1}, locked_until = NULL "
    f"WHERE api_key_id = ${_K + 2} AND key = ${_K + 3} AND EXISTS (SELECT FROM saved)"
)


async def save(
    database: Database,
    encoded: Encoded,
    *,
    completes: Completes | None = None,
    session: AsyncSession | None = None,
) -> None:
    """Store a decision, and complete the idempotency record it answers, atomically.

    In `session` when the caller has a transaction of its own (a webhook's effect); otherwise by the
    fastest write the database allows: one statement on PostgreSQL, one short transaction on SQLite.
    """
    if session is not None:
        await _save_in(session, encoded, completes)
    elif database.dialect == "postgresql":
        values = [encoded.values[name] for name in _COLUMNS] + outcome_facts.pg_values(encoded.facts)
        async with database.driver() as connection:
            if completes is None:
                await connection.execute(_PG_INSERT, *values)
            else:
                await connection.execute(
                    _PG_INSERT_AND_COMPLETE, *values, completes.status, completes.api_key_id, completes.key
                )
    else:
        async with database.transaction() as own:
            await _save_in(own, encoded, completes)


async def _save_in(session: AsyncSession, encoded: Encoded, completes: Completes | None) -> None:
    await session.execute(_INSERT, encoded.values)
    await outcome_facts.insert(session, encoded.values["id"], encoded.facts)
    if completes is not None:
        await session.execute(
            _COMPLETE,
            {
                "k_api_key_id": completes.api_key_id,
                "k_key": completes.key,
                "k_status": completes.status,
                "answer": encoded.answer,
            },
        )


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
    """The last row of a page: the next page starts strictly after it."""

    created_at: datetime
    id: uuid.UUID | str


def beyond(
    position: PagePosition,
    *,
    newest_first: bool,
    order: tuple[InstrumentedAttribute[datetime], InstrumentedAttribute[Any]] = (
        DecisionRow.created_at,
        DecisionRow.id,
    ),
) -> ColumnElement[bool]:
    """The rows after `position` in (time, id) `order`, in either direction: by default the
    decisions'; the webhook inbox pages over its own (received_at, id) the same way.

    Spelt out rather than a row-value comparison, so each side binds through its column's type.
    """
    at, key = order
    if newest_first:
        return or_(at < position.created_at, and_(at == position.created_at, key < position.id))
    return or_(at > position.created_at, and_(at == position.created_at, key > position.id))


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
