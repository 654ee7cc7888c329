"""API keys: stored as hashes, looked up by their public id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import ApiKey


async def add(session: AsyncSession, key: ApiKey) -> None:
    session.add(key)
    await session.flush()


async def get(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def list_all(session: AsyncSession) -> Sequence[ApiKey]:
    result = await session.execute(select(ApiKey).order_by(ApiKey.created_at))
    return result.scalars().all()


async def revoke(session: AsyncSession, key_id: str, at: datetime) -> bool:
    """Revoke a key; False when there is no such key or it was revoked already."""
    result = await session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=at)
    )
    return bool(getattr(result, "rowcount", 0))
