"""The outcome row a decision is stored with: the keys its outcome is counted under, nothing known yet.

Written in the same statement as the decision (see `decisions.save`), so every decision has one and
the outcome stats read one narrow table. A decision's rules are kept as the id of their set: few
distinct sets exist, so grouping by set and then spreading each set over its rules is cheap.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Outcome, RuleSet, as_utc
from app.domain import Decision, Order


@dataclass(frozen=True)
class RuleSetKey:
    id: int
    rules: tuple[str, ...]


def rule_set_of(rules: Iterable[str]) -> RuleSetKey:
    """The same set of rules, whatever their order or repetition, has the same id."""
    names = tuple(sorted(set(rules)))
    digest = hashlib.sha256("\n".join(names).encode()).digest()
    return RuleSetKey(id=int.from_bytes(digest[:8], "big", signed=True), rules=names)


# (column, PostgreSQL type): the outcome row's values at decision time, in statement order.
FACT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("created_at", "timestamptz"),
    ("channel", "varchar"),
    ("platform", "varchar"),
    ("order_id", "varchar"),
    ("policy_id", "varchar"),
    ("policy_version", "varchar"),
    ("queue", "varchar"),
    ("reason", "varchar"),
    ("sla_met", "boolean"),
    ("rule_set", "bigint"),
    ("currency", "varchar"),
    ("a_to_z_claim", "boolean"),
)


@dataclass(frozen=True)
class Facts:
    values: dict[str, Any]  # FACT_COLUMNS' values
    rule_set: RuleSetKey


def facts_of(decision: Decision, order: Order) -> Facts:
    return _facts(
        created_at=decision.created_at,
        channel=decision.channel,
        platform=decision.platform.value,
        order_id=order.order_id,
        policy_id=decision.policy.id,
        policy_version=decision.policy.version,
        queue=decision.queue.name,
        reason=decision.reason.value,
        sla_due_at=decision.queue.sla_due_at,
        rules=(step.rule for step in decision.explanation),
        currency=order.currency,
    )


def facts_of_stored(
    decision_id: uuid.UUID, answer: dict[str, Any], order_snapshot: dict[str, Any]
) -> tuple[dict[str, Any], RuleSetKey]:
    """The same from a stored decision (for decisions made before outcomes were kept)."""
    facts = _facts(
        created_at=datetime.fromisoformat(answer["created_at"]),
        channel=answer["channel"],
        platform=answer["platform"],
        order_id=order_snapshot["order_id"],
        policy_id=answer["policy"]["id"],
        policy_version=answer["policy"]["version"],
        queue=answer["queue"]["name"],
        reason=answer["reason"],
        sla_due_at=datetime.fromisoformat(answer["queue"]["sla_due_at"]),
        rules=(step["rule"] for step in answer.get("explanation", [])),
        currency=order_snapshot["currency"],
    )
    return {"decision_id": decision_id, **facts.values}, facts.rule_set


def _facts(
    *,
    created_at: datetime,
    channel: str,
    platform: str,
    order_id: str,
    policy_id: str,
    policy_version: str,
    queue: str,
    reason: str,
    sla_due_at: datetime,
    rules: Iterable[str],
    currency: str,
) -> Facts:
    rule_set = rule_set_of(rules)
    return Facts(
        values={
            "created_at": as_utc(created_at),
            "channel": channel,
            "platform": platform,
            "order_id": order_id,
            "policy_id": policy_id,
            "policy_version": policy_version,
            "queue": queue,
            "reason": reason,
            # The same test as the decision stats' `sla_breached`, the other way round.
            "sla_met": sla_due_at > created_at,
            "rule_set": rule_set.id,
            "currency": currency,
            "a_to_z_claim": False,
        },
        rule_set=rule_set,
    )


def pg_ctes(first: int) -> str:
    """Common table expressions writing the outcome row after `saved` (the inserted decision's id),
    and its rule set if it is new; parameters `$first` onwards (see `pg_values`)."""
    columns = ", ".join(name for name, _type in FACT_COLUMNS)
    values = ", ".join(f"CAST(${first + n} AS {type_})" for n, (_name, type_) in enumerate(FACT_COLUMNS))
    rule_set = first + len(FACT_COLUMNS)
    return (
        f"facts AS (INSERT INTO {Outcome.__tablename__} (decision_id, {columns}) "
        f"SELECT saved.id, {values} FROM saved), "
        f"rule_set AS (INSERT INTO {RuleSet.__tablename__} (id, rules) "
        f"VALUES (CAST(${rule_set} AS bigint), CAST(${rule_set + 1} AS jsonb)) ON CONFLICT DO NOTHING)"
    )


PG_PARAMETERS = len(FACT_COLUMNS) + 2


def pg_values(facts: Facts) -> list[Any]:
    return [
        *(facts.values[name] for name, _type in FACT_COLUMNS),
        facts.rule_set.id,
        json.dumps({"rules": list(facts.rule_set.rules)}),
    ]


async def insert(session: AsyncSession, decision_id: uuid.UUID, facts: Facts) -> None:
    """The same as `pg_ctes`, in the caller's transaction (SQLite, or a webhook's unit of work)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    await session.execute(
        dialect.insert(RuleSet)
        .values(id=facts.rule_set.id, rules={"rules": list(facts.rule_set.rules)})
        .on_conflict_do_nothing()
    )
    await session.execute(dialect.insert(Outcome).values(decision_id=decision_id, **facts.values))
