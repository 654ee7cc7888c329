"""Decisions: appended once, read back as they were answered."""

from __future__ import annotations

import uuid
from typing import Any

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
