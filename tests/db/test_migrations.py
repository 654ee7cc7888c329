"""The migrations run both ways on the suite's database engine (PostgreSQL or SQLite)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.migrate import alembic_config, head_revision
from app.db.tables import Base


async def test_head_has_every_table_of_the_models(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    assert set(Base.metadata.tables) <= tables
    # One line of history: two migrations written side by side would leave two heads.
    assert ScriptDirectory.from_config(alembic_config(database_url)).get_heads() == [head_revision()]


async def test_downgrade_and_upgrade_again(tmp_path: object) -> None:
    # On a scratch SQLite file so the suite's database stays at head for the other tests.
    url = f"sqlite+aiosqlite:///{tmp_path}/roundtrip.db"
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "head")
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "head")
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    assert set(Base.metadata.tables) <= tables


ORDER = "gid://shopify/Order/450789469"
TOQUE, MITTENS = "gid://shopify/LineItem/1071823172", "gid://shopify/LineItem/1071823173"


async def test_settled_units_are_filled_from_what_moved_money_before(tmp_path: object) -> None:
    """Revision 0008 on a database with an action, a failed one, and two refunds made by hand (one
    whose webhook is still stored, one whose is not)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/settled.db"
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "0007")
    now = datetime.now(UTC)
    decision_id, credited, failed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO decisions (id, created_at, as_of, channel, platform, classification, "
                "order_ref, reason, queue, eligible, sla_due_at, policy_id, policy_version, sandbox, "
                "answer, order_snapshot, request) VALUES (:id, :now, :now, 'shopify_ca', 'shopify', "
                "'merchant_policy', '#1001', 'other', 'returns', 1, :now, 'p', '1', 0, '{}', '{}', '{}')"
            ),
            {"id": decision_id.hex, "now": now},
        )
        for action_id, status, lines in (
            (failed, "failed", [[TOQUE, 1], [MITTENS, 1]]),
            (credited, "succeeded", [[MITTENS, 1]]),
        ):
            await connection.execute(
                text(
                    "INSERT INTO actions (id, decision_id, kind, status, channel, order_id, created_at, "
                    "updated_at, plan, shopify) VALUES (:id, :decision, 'store_credit', :status, "
                    "'shopify_ca', :order, :now, :now, :plan, '{}')"
                ),
                {
                    "id": action_id.hex,
                    "decision": decision_id.hex,
                    "status": status,
                    "order": ORDER,
                    "now": now,
                    "plan": json.dumps({"lines": lines}),
                },
            )
        for refund in ("gid://shopify/Refund/5001", "gid://shopify/Refund/5002"):
            await connection.execute(
                text(
                    "INSERT INTO shopify_refunds (refund_id, channel, order_id, amount, created_at, "
                    "recorded_at) VALUES (:id, 'shopify_ca', :order, :amount, :now, :now)"
                ),
                {
                    "id": refund,
                    "order": ORDER,
                    "amount": '{"amount": "44.07", "currency": "CAD"}',
                    "now": now,
                },
            )
        payload = {"id": 5001, "refund_line_items": [{"line_item_id": 1071823172, "quantity": 1}]}
        await connection.execute(
            text(
                "INSERT INTO webhook_events (id, channel, topic, subject, occurred_at, received_at, "
                "payload, status, attempts, next_attempt_at) VALUES ('wh-1', 'shopify_ca', "
                "'refunds/create', 'gid://shopify/Refund/5001', :now, :now, :payload, 'processed', 1, :now)"
            ),
            {"now": now, "payload": json.dumps(payload)},
        )
    await engine.dispose()

    await asyncio.to_thread(command.upgrade, config, "head")

    engine = create_async_engine(url)
    async with engine.connect() as connection:
        units = (
            await connection.execute(
                text("SELECT line_id, unit, action_id, refund_id FROM settled_units ORDER BY line_id, unit")
            )
        ).all()
        lines = dict((await connection.execute(text("SELECT refund_id, lines FROM shopify_refunds"))).all())
    await engine.dispose()
    # The failed action holds nothing; the credit holds the mittens; the refund its toque.
    assert [(line, unit, action, refund) for line, unit, action, refund in units] == [
        (TOQUE, 1, None, "gid://shopify/Refund/5001"),
        (MITTENS, 1, credited.hex, None),
    ]
    assert json.loads(lines["gid://shopify/Refund/5001"]) == [{"line_id": TOQUE, "quantity": 1}]
    assert lines["gid://shopify/Refund/5002"] is None  # not known: it blocks the order's actions
