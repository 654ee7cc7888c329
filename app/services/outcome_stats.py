"""`GET /v1/stats/outcomes`: retention, refunds, claims and deadlines met, per group.

One pass over the outcome rows grouped by key and currency; `rule` groups by rule set (few exist)
and each set's figures are added to every rule it holds, so a decision counts once in each of its
rules. Rates are fractions of four decimals; money is summed per currency.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import outcome_stats
from app.db import outcomes as rows
from app.db.outcome_stats import Tally
from app.domain import Money

RATE = Decimal("0.0001")


@dataclass
class Group:
    key: str
    decisions: int = 0
    resolved: int = 0
    retained: int = 0
    refunded: int = 0
    returnless: int = 0
    claims: int = 0
    sla_met: int = 0
    refunded_amounts: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    retained_amounts: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def add(self, tally: Tally) -> None:
        self.decisions += tally.decisions
        self.resolved += tally.resolved
        self.retained += tally.retained
        self.refunded += tally.refunded
        self.returnless += tally.returnless
        self.claims += tally.claims
        self.sla_met += tally.sla_met
        self.refunded_amounts[tally.currency] += tally.refunded_amount
        self.retained_amounts[tally.currency] += tally.retained_amount

    def answer(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "decisions": self.decisions,
            "resolved": self.resolved,
            "retained": self.retained,
            "refunded": self.refunded,
            "returnless": self.returnless,
            "claims": self.claims,
            "retention_rate": rate(self.retained, self.resolved),
            "claim_rate": rate(self.claims, self.decisions),
            "sla_met_rate": rate(self.sla_met, self.decisions),
            "refunded_amount": _single(self.refunded_amounts),
            "retained_amount": _single(self.retained_amounts),
            "refunded_amounts": _each(self.refunded_amounts),
            "retained_amounts": _each(self.retained_amounts),
        }


def rate(part: int, whole: int) -> str:
    """`part / whole` to four decimals, half up, without trailing zeros; "0" when `whole` is 0."""
    if whole == 0:
        return "0"
    value = (Decimal(part) / Decimal(whole)).quantize(RATE, rounding=ROUND_HALF_UP)
    return format(value.normalize(), "f") if value else "0"


def _each(amounts: dict[str, Decimal]) -> list[dict[str, str]]:
    return [
        Money(amount=amount, currency=currency).rounded().model_dump(mode="json")
        for currency, amount in sorted(amounts.items())
    ]


def _single(amounts: dict[str, Decimal]) -> dict[str, str] | None:
    # A sum across currencies means nothing: a group of several has its amounts only per currency.
    each = _each(amounts)
    return each[0] if len(each) == 1 else None


async def stats(
    session: AsyncSession, group_by: str, since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    tallies = await outcome_stats.tallies(session, group_by, since, until)
    groups: dict[str, Group] = {}

    def into(key: str, tally: Tally) -> None:
        groups.setdefault(key, Group(key)).add(tally)

    if group_by == "rule":
        names = await rows.rule_sets(session, {int(t.key[0]) for t in tallies})
        for tally in tallies:
            for rule in names.get(int(tally.key[0]), ["(unknown rule set)"]):
                into(rule, tally)
    else:
        for tally in tallies:
            into(_key(group_by, tally.key), tally)
    return [groups[key].answer() for key in sorted(groups)]


def _key(group_by: str, key: tuple[Any, ...]) -> str:
    if group_by == "policy":
        return f"{key[0]}@{key[1]}"
    if isinstance(key[0], date):
        return key[0].isoformat()
    return str(key[0])
