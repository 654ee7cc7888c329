"""The outcome stats' one query: a single pass over the outcome rows, grouped by a key and currency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Date, case, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.tables import Outcome

RETAINED = ("exchanged", "store_credit")


@dataclass(frozen=True)
class Tally:
    """One group and currency: counts of decisions and outcomes, and the money they moved."""

    key: tuple[Any, ...]
    currency: str
    decisions: int
    resolved: int
    retained: int
    refunded: int
    returnless: int
    claims: int
    sla_met: int
    refunded_amount: Decimal
    retained_amount: Decimal


def _count(condition: ColumnElement[bool] | InstrumentedAttribute[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


async def tallies(
    session: AsyncSession, group_by: str, since: datetime | None, until: datetime | None
) -> list[Tally]:
    keys = _keys(session, group_by)
    status = Outcome.status
    query = select(
        *keys,
        Outcome.currency,
        func.count(),
        _count(status.is_not(None) & (status != "open")),
        _count(status.in_(RETAINED)),
        _count(status == "refunded"),
        _count(status == "kept_returnless"),
        _count(Outcome.a_to_z_claim),
        _count(Outcome.sla_met),
        func.coalesce(func.sum(Outcome.refunded_amount), 0),
        func.coalesce(func.sum(Outcome.retained_amount), 0),
    ).group_by(*keys, Outcome.currency)
    if since is not None:
        query = query.where(Outcome.created_at >= since)
    if until is not None:
        query = query.where(Outcome.created_at < until)
    width = len(keys)
    result = []
    for row in await session.execute(query):
        values = tuple(row)
        decisions, resolved, retained, refunded, returnless, claims, sla_met = (
            int(v or 0) for v in values[width + 1 : width + 8]
        )
        result.append(
            Tally(
                key=tuple(values[:width]),
                currency=str(values[width]),
                decisions=decisions,
                resolved=resolved,
                retained=retained,
                refunded=refunded,
                returnless=returnless,
                claims=claims,
                sla_met=sla_met,
                refunded_amount=Decimal(values[width + 8] or 0),
                retained_amount=Decimal(values[width + 9] or 0),
            )
        )
    return result


def _keys(session: AsyncSession, group_by: str) -> list[ColumnElement[Any]]:
    if group_by == "day":
        # The UTC calendar day of the decision, as the decision stats count it.
        if session.get_bind().dialect.name == "postgresql":
            return [cast(func.timezone(literal_column("'UTC'"), Outcome.created_at), Date)]
        return [func.substr(Outcome.created_at, 1, 10)]
    columns: dict[str, list[ColumnElement[Any]]] = {
        "channel": [Outcome.channel.expression],
        "policy": [Outcome.policy_id.expression, Outcome.policy_version.expression],
        "rule": [Outcome.rule_set.expression],
        "queue": [Outcome.queue.expression],
        "reason": [Outcome.reason.expression],
    }
    return columns[group_by]
