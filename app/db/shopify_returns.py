"""The latest status of each Shopify Return: replaced only by an event that happened later."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import ShopifyReturn


async def record(session: AsyncSession, seen: ShopifyReturn) -> bool:
    """Store what an event says about a Return; False when a later event's word stands already.

    The worker skips stale events too; this guards the row itself, e.g. against a late
    `returns/request`, which is always handled because it makes the decision.
    """
    values: dict[str, Any] = {
        column.key: getattr(seen, column.key) for column in ShopifyReturn.__table__.columns
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    insert = dialect.insert(ShopifyReturn).values(**values)
    statement = insert.on_conflict_do_update(
        index_elements=[ShopifyReturn.return_id],
        set_={
            # An event that states no status (returns/process, returns/update) keeps the one known.
            "status": func.coalesce(insert.excluded.status, ShopifyReturn.status),
            "last_topic": insert.excluded.last_topic,
            "changed_at": insert.excluded.changed_at,
            "webhook_event_id": insert.excluded.webhook_event_id,
        },
        where=ShopifyReturn.changed_at < insert.excluded.changed_at,
    )
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def get_many(session: AsyncSession, return_ids: Collection[str]) -> Sequence[ShopifyReturn]:
    if not return_ids:
        return []
    query = (
        select(ShopifyReturn)
        .where(ShopifyReturn.return_id.in_(return_ids))
        .order_by(ShopifyReturn.changed_at)
    )
    return (await session.scalars(query)).all()
