"""The webhook inbox: events stored once by id, claimed by workers under a lease, finished once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import exists, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.decisions import PagePosition, beyond
from app.db.tables import WebhookEvent

# The operators' list pages over (received_at, id), newest first.
PAGE_ORDER = (WebhookEvent.received_at, WebhookEvent.id)


class EventStatus(StrEnum):
    pending = "pending"  # due at next_attempt_at
    processing = "processing"  # claimed; the claim lapses at next_attempt_at
    processed = "processed"
    ignored = "ignored"  # a topic the service does not handle
    superseded = "superseded"  # older than a change already applied to the same resource
    parked = "parked"  # failed for good: waits for an operator


async def insert_if_absent(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Store an event; False when its webhook id is stored already (a redelivery)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(WebhookEvent).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def claim_next(
    session: AsyncSession, now: datetime, lease_until: datetime, token: str
) -> WebhookEvent | None:
    """Claim the oldest due event (pending, or processing under a lapsed claim), in one statement.

    On PostgreSQL `SKIP LOCKED` lets workers claim side by side; SQLite serialises writers anyway.
    """
    due = (
        select(WebhookEvent.id)
        .where(
            WebhookEvent.status.in_((EventStatus.pending, EventStatus.processing)),
            WebhookEvent.next_attempt_at <= now,
        )
        .order_by(WebhookEvent.occurred_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(due.scalar_subquery()))
        .values(
            status=EventStatus.processing,
            attempts=WebhookEvent.attempts + 1,
            next_attempt_at=lease_until,
            claim_token=token,
        )
        .returning(WebhookEvent)
        .execution_options(synchronize_session=False)
    )
    return (await session.scalars(statement)).one_or_none()


async def hold_claim(session: AsyncSession, event_id: str, token: str) -> bool:
    """Lock the event for this transaction if the claim is still ours (not lapsed and taken over)."""
    result = await session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id == event_id,
            WebhookEvent.claim_token == token,
            WebhookEvent.status == EventStatus.processing,
        )
        .values(claim_token=token)
    )
    return bool(getattr(result, "rowcount", 0))


async def lock_subject(session: AsyncSession, subject: str) -> None:
    """Serialise the events of one resource until the transaction ends (SQLite has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:subject, 0))"), {"subject": subject}
        )


async def newer_change_applied(session: AsyncSession, event: WebhookEvent) -> bool:
    """Whether an event about the same resource, that happened later, was processed already."""
    if event.subject is None:
        return False
    later = exists().where(
        WebhookEvent.subject == event.subject,
        WebhookEvent.id != event.id,
        WebhookEvent.status == EventStatus.processed,
        WebhookEvent.occurred_at > event.occurred_at,
    )
    return bool(await session.scalar(select(later)))


async def processed_before(session: AsyncSession, event: WebhookEvent) -> WebhookEvent | None:
    """Another event of the same topic about the same resource that was processed already."""
    if event.subject is None:
        return None
    query = select(WebhookEvent).where(
        WebhookEvent.subject == event.subject,
        WebhookEvent.topic == event.topic,
        WebhookEvent.id != event.id,
        WebhookEvent.status == EventStatus.processed,
    )
    return (await session.scalars(query.limit(1))).one_or_none()


async def finish(
    session: AsyncSession, event_id: str, status: EventStatus, outcome: str, now: datetime
) -> None:
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id)
        .values(status=status, outcome=outcome[:255], finished_at=now, claim_token=None, last_error=None)
    )


async def release_for_retry(
    session: AsyncSession, event_id: str, token: str, error: str, next_attempt_at: datetime
) -> bool:
    result = await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.claim_token == token)
        .values(
            status=EventStatus.pending,
            next_attempt_at=next_attempt_at,
            claim_token=None,
            last_error=error[:2000],
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def park(session: AsyncSession, event_id: str, token: str, error: str, now: datetime) -> bool:
    result = await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.claim_token == token)
        .values(status=EventStatus.parked, claim_token=None, last_error=error[:2000], finished_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def requeue_parked(session: AsyncSession, event_id: str, now: datetime) -> bool:
    """An operator sends a parked event round again, with a fresh count of attempts."""
    result = await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.status == EventStatus.parked)
        .values(status=EventStatus.pending, attempts=0, next_attempt_at=now, finished_at=None)
    )
    return bool(getattr(result, "rowcount", 0))


async def get(session: AsyncSession, event_id: str) -> WebhookEvent | None:
    return await session.get(WebhookEvent, event_id, populate_existing=True)


async def list_recent(
    session: AsyncSession,
    status: EventStatus | None,
    topic: str | None,
    after: PagePosition | None,
    limit: int,
) -> Sequence[WebhookEvent]:
    """The received events newest first, for operators: a page after `after`, keyed like the decisions."""
    query = select(WebhookEvent)
    if status is not None:
        query = query.where(WebhookEvent.status == status)
    if topic is not None:
        query = query.where(WebhookEvent.topic == topic)
    if after is not None:
        query = query.where(beyond(after, newest_first=True, order=PAGE_ORDER))
    query = query.order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc()).limit(limit)
    return (await session.scalars(query)).all()


async def backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many events wait (pending or being processed), and when the oldest of them arrived."""
    # One index range scan on (status, received_at): cheap however long the processed history is.
    waiting = WebhookEvent.status.in_((EventStatus.pending, EventStatus.processing))
    row = (
        await session.execute(select(func.count(), func.min(WebhookEvent.received_at)).where(waiting))
    ).one()
    return int(row[0]), row[1]
