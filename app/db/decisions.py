"""Decisions: appended once, read back as they were answered."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
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


def _columns(decision: Decision, request: ReturnRequest, api_key_id: str | None) -> dict[str, Any]:
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
    )


async def add(
    session: AsyncSession, decision: Decision, order: Order, request: ReturnRequest, api_key_id: str | None
) -> dict[str, Any]:
    """Add the decision to the session's transaction; returns the answer as stored."""
    answer = decision.model_dump(mode="json")
    session.add(
        DecisionRow(
            **_columns(decision, request, api_key_id),
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
