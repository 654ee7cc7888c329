"""Decisions: appended once, read back as they were answered."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Decision as DecisionRow
from app.domain import Decision, Order, ReturnRequest

# The customer's own words may hold personal data: they inform the decision and are never stored.
_NOT_STORED = {"customer_message"}


async def add(
    session: AsyncSession, decision: Decision, order: Order, request: ReturnRequest, api_key_id: str | None
) -> dict[str, Any]:
    answer = decision.model_dump(mode="json")
    session.add(
        DecisionRow(
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
            answer=answer,
            order_snapshot=order.model_dump(mode="json"),
            request=request.model_dump(mode="json", exclude=_NOT_STORED),
        )
    )
    await session.flush()
    return answer


async def get(session: AsyncSession, decision_id: uuid.UUID) -> DecisionRow | None:
    return await session.get(DecisionRow, decision_id)


# --- Replay: stored merchant decisions, read back to be decided again under a draft policy ----------


async def for_replay(
    session: AsyncSession,
    channel: str,
    *,
    since: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
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
        created_at, decision_id = after
        # Spelt out rather than a row-value comparison, so each side binds through its column's type.
        query = query.where(
            or_(
                DecisionRow.created_at > created_at,
                and_(DecisionRow.created_at == created_at, DecisionRow.id > decision_id),
            )
        )
    return (await session.execute(query)).all()
