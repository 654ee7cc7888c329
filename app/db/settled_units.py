"""The settled units of Shopify order lines, each held by the action or the refund that settled it.

A claim inserts one row per unit, numbered from the lowest free number up. Two claims that read the
same units at the same time pick the same lowest free number, so the primary key refuses all but
one of them (the loser's savepoint rolls back and it reads again): the database decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Action, SettledUnit, ShopifyRefund


async def on_lines(
    session: AsyncSession, channel: str, order_id: str, line_ids: Iterable[str]
) -> Sequence[SettledUnit]:
    """The settled units of these lines of the order, as committed now."""
    result = await session.execute(
        select(SettledUnit)
        .where(
            SettledUnit.channel == channel,
            SettledUnit.order_id == order_id,
            SettledUnit.line_id.in_(set(line_ids)),
        )
        .order_by(SettledUnit.line_id, SettledUnit.unit)
        .execution_options(populate_existing=True)
    )
    return result.scalars().all()


async def insert(session: AsyncSession, units: Sequence[SettledUnit]) -> bool:
    """Add the units, all or none; False when another claim holds one of them already."""
    try:
        async with session.begin_nested():
            session.add_all(units)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def release(session: AsyncSession, action_id: uuid.UUID) -> None:
    """Free the units of an action that moved nothing (it failed)."""
    await session.execute(delete(SettledUnit).where(SettledUnit.action_id == action_id))


async def actions(session: AsyncSession, action_ids: Iterable[uuid.UUID]) -> Sequence[Action]:
    result = await session.execute(select(Action).where(Action.id.in_(set(action_ids))))
    return result.scalars().all()


async def refunds_of_unknown_lines(
    session: AsyncSession, channel: str, order_id: str
) -> Sequence[ShopifyRefund]:
    """Refunds made outside the service whose lines are not known (recorded before lines were)."""
    result = await session.execute(
        select(ShopifyRefund)
        .where(
            ShopifyRefund.channel == channel,
            ShopifyRefund.order_id == order_id,
            ShopifyRefund.action_id.is_(None),
            ShopifyRefund.lines.is_(None),
        )
        .order_by(ShopifyRefund.created_at)
    )
    return result.scalars().all()
