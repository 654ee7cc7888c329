"""Idempotency records: one row per (API key, Idempotency-Key), claimed atomically."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import IdempotencyRecord

Record = IdempotencyRecord


async def insert_if_absent(
    session: AsyncSession,
    api_key_id: str,
    key: str,
    fingerprint: str,
    now: datetime,
    expires_at: datetime,
    locked_until: datetime,
) -> bool:
    """Insert a claimed record; False when one exists already (the database decides, not a read)."""
    values = dict(
        api_key_id=api_key_id,
        key=key,
        fingerprint=fingerprint,
        created_at=now,
        expires_at=expires_at,
        locked_until=locked_until,
    )
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(Record).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def get(session: AsyncSession, api_key_id: str, key: str) -> Record | None:
    result = await session.execute(
        select(Record)
        .where(Record.api_key_id == api_key_id, Record.key == key)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def take_over(
    session: AsyncSession,
    api_key_id: str,
    key: str,
    fingerprint: str,
    now: datetime,
    expires_at: datetime,
    locked_until: datetime,
) -> bool:
    """Claim a record that expired, or whose first request died without an answer."""
    expired = Record.expires_at <= now
    abandoned = and_(
        Record.response_status.is_(None), Record.locked_until <= now, Record.fingerprint == fingerprint
    )
    result = await session.execute(
        update(Record)
        .where(Record.api_key_id == api_key_id, Record.key == key, or_(expired, abandoned))
        .values(
            fingerprint=fingerprint,
            created_at=now,
            expires_at=expires_at,
            locked_until=locked_until,
            response_status=None,
            response_body=None,
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def complete(
    session: AsyncSession, api_key_id: str, key: str, status: int, body: dict[str, Any]
) -> None:
    await session.execute(
        update(Record)
        .where(Record.api_key_id == api_key_id, Record.key == key)
        .values(response_status=status, response_body=body, locked_until=None)
    )


async def release(session: AsyncSession, api_key_id: str, key: str) -> None:
    """Forget a claim whose request failed, so the same key can be tried again."""
    await session.execute(
        delete(Record).where(
            Record.api_key_id == api_key_id, Record.key == key, Record.response_status.is_(None)
        )
    )


async def purge_expired(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(delete(Record).where(Record.expires_at <= now))
    return int(getattr(result, "rowcount", 0))
