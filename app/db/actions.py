"""Actions and the Shopify refunds known on each order."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.action_state import PENDING_STATES, STATES_HOLDING_DECISION, ActionState
from app.db import settled_units
from app.db.tables import Action, ShopifyRefund
from app.domain import Resolution


async def insert(session: AsyncSession, action: Action) -> bool:
    """Add an action; False when the decision already has a live one (the unique index decides)."""
    try:
        async with session.begin_nested():
            session.add(action)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def get(session: AsyncSession, action_id: uuid.UUID) -> Action | None:
    result = await session.execute(
        select(Action).where(Action.id == action_id).execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def active_for(session: AsyncSession, decision_id: uuid.UUID) -> Action | None:
    """The decision's action that is pending or has succeeded, if any."""
    result = await session.execute(
        select(Action)
        .where(Action.decision_id == decision_id, Action.status.in_(STATES_HOLDING_DECISION))
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def for_decision(session: AsyncSession, decision_id: uuid.UUID) -> Sequence[Action]:
    result = await session.execute(
        select(Action).where(Action.decision_id == decision_id).order_by(Action.created_at, Action.id)
    )
    return result.scalars().all()


async def pending(session: AsyncSession, updated_before: datetime, limit: int) -> Sequence[Action]:
    """Actions whose outcome is not settled and that nobody has touched since `updated_before`."""
    result = await session.execute(
        select(Action)
        .where(Action.status.in_(PENDING_STATES), Action.updated_at <= updated_before)
        .order_by(Action.updated_at)
        .limit(limit)
    )
    return result.scalars().all()


async def transition(session: AsyncSession, action: Action, status: ActionState, **values: Any) -> bool:
    """Compare and set: move `action` to `status` only if nobody moved it since it was read.

    Two runners of one action (a retried request, a reconciliation) can both read it; only one of
    them wins each step, and only the winner sends anything. A move the lifecycle does not allow
    is a bug, refused before anything is written.
    """
    if not ActionState(action.status).may_become(status):
        raise ValueError(f"action {action.id}: {action.status} cannot become {status}")
    result = await session.execute(
        update(Action)
        .where(
            Action.id == action.id,
            Action.status == action.status,
            Action.updated_at == action.updated_at,
        )
        .values(status=status, **values)
    )
    moved = bool(getattr(result, "rowcount", 0))
    if moved and status is ActionState.failed:
        await settled_units.release(session, action.id)  # it moved nothing: its units are free again
    return moved


async def record_refund(session: AsyncSession, refund: ShopifyRefund) -> bool:
    """Record a refund once; False when it was known already (a webhook seen twice, a read-back)."""
    values = {column.key: getattr(refund, column.key) for column in ShopifyRefund.__table__.columns}
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    result = await session.execute(dialect.insert(ShopifyRefund).values(**values).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0))


async def fill_refund_lines(session: AsyncSession, refund: ShopifyRefund) -> bool:
    """Store what a known refund covered, if it was recorded without; False when it was known."""
    result = await session.execute(
        update(ShopifyRefund)
        .where(ShopifyRefund.refund_id == refund.refund_id, ShopifyRefund.lines.is_(None))
        .values(lines=refund.lines)
    )
    return bool(getattr(result, "rowcount", 0))


async def has_unnamed_pending_exchanges(session: AsyncSession, channel: str) -> bool:
    """Whether an exchange of `channel` is waiting to learn which Return it made (its answer was lost)."""
    made_by = Action.shopify["return_id"].as_string()
    found = await session.scalar(
        select(Action.id)
        .where(
            Action.status.in_((ActionState.submitted, ActionState.unknown)),
            Action.kind == Resolution.exchange,
            Action.channel == channel,
            made_by.is_(None),
        )
        .limit(1)
    )
    return found is not None


async def refunds_on(session: AsyncSession, order_id: str) -> Sequence[ShopifyRefund]:
    result = await session.execute(
        select(ShopifyRefund).where(ShopifyRefund.order_id == order_id).order_by(ShopifyRefund.created_at)
    )
    return result.scalars().all()


async def refunds_known(session: AsyncSession, refund_ids: Sequence[str]) -> set[str]:
    """Of these refunds, those recorded with what they covered, or made by an action (which knows)."""
    result = await session.execute(
        select(ShopifyRefund.refund_id).where(
            ShopifyRefund.refund_id.in_(refund_ids),
            ShopifyRefund.lines.is_not(None) | ShopifyRefund.action_id.is_not(None),
        )
    )
    return set(result.scalars().all())


async def pending_exchanges(session: AsyncSession, return_id: str, order_id: str | None) -> Sequence[Action]:
    """Exchanges not yet settled that made this Return, or that may have made it without knowing
    (on the same order, the answer naming the Return was lost)."""
    made_by = Action.shopify["return_id"].as_string()
    concerned = made_by == return_id
    if order_id is not None:
        concerned = concerned | ((Action.order_id == order_id) & made_by.is_(None))
    result = await session.execute(
        select(Action).where(
            Action.status.in_((ActionState.submitted, ActionState.unknown)),
            Action.kind == Resolution.exchange,
            concerned,
        )
    )
    return result.scalars().all()
