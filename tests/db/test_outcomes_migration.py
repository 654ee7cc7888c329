"""Migration 0006 gives every decision stored before it an outcome row, with its rule set."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.db import decisions
from app.db.decisions import Origin
from app.db.migrate import alembic_config
from app.db.tables import Outcome, RuleSet
from app.domain import Reason, ReturnRequest
from app.runtime import open_runtime
from app.settings import Settings


async def test_decisions_made_before_get_their_outcome_rows(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/before.db"
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "0005")
    settings = Settings(_env_file=None, database_url="sqlite+aiosqlite:///:memory:")  # type: ignore[call-arg]
    async with open_runtime(settings) as runtime:
        request = ReturnRequest(order_ref="113-4567890-1234567", reason=Reason.damaged)
        order = await runtime.routing.resolve_order(request)
        decision = runtime.routing.decide(order, request, datetime(2026, 12, 1, 15, tzinfo=UTC))
    encoded = decisions.encode(decision, order, request, Origin())
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        # As 0005 stored it: the decision alone.
        await connection.execute(decisions._INSERT, encoded.values)
    await asyncio.to_thread(command.upgrade, config, "head")
    async with AsyncSession(engine) as session:
        [row] = (await session.scalars(select(Outcome))).all()
        [rule_set] = (await session.scalars(select(RuleSet))).all()
    await engine.dispose()
    assert str(row.decision_id) == decision.decision_id
    assert (row.channel, row.order_id, row.policy_id, row.queue, row.status) == (
        "amazon_us",
        "113-4567890-1234567",
        "amazon-us",
        "amazon-compliance",
        None,
    )
    assert row.rule_set == encoded.facts.rule_set.id == rule_set.id
    assert rule_set.rules == {"rules": sorted({step.rule for step in decision.explanation})}
