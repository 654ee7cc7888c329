"""Seed a PostgreSQL database with decisions and realistic outcomes, and print the outcomes by rule.

    python bench/seed_outcomes.py                    # 1,000,000 decisions into its own database
    python bench/seed_outcomes.py --rows 20000 --database-url postgresql+asyncpg://...  # any database
    python bench/seed_outcomes.py --drop             # removes the benchmark's database

The decisions are real answers of the routing pipeline: every sandbox order (Amazon and Shopify)
for four reasons, copied server-side with `generate_series` over the 90 days before now, each with
the outcome row `decisions.save` writes. Outcomes then follow what sellers see: an Amazon return
is mostly refunded in Amazon's flow, sometimes closed without a return, declined when out of policy,
with A-to-z claims rare on eligible returns and frequent on the others; a Shopify return is kept by
an exchange or store credit about four times in ten, refunded (kept by the customer when the policy
needs no return) or declined otherwise. Decisions of the last three days are mostly still open.
The draws are a hash of the row number: the same seed gives the same data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateIndex

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.db.migrate import upgrade  # noqa: E402
from app.db.outcome_facts import facts_of  # noqa: E402
from app.db.tables import Decision as DecisionRow  # noqa: E402
from app.db.tables import Outcome  # noqa: E402
from app.domain import Reason, ReturnRequest  # noqa: E402
from app.runtime import open_runtime  # noqa: E402
from app.services import outcome_stats  # noqa: E402
from app.settings import Settings  # noqa: E402

ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DATABASE = "returns_router_bench_outcomes"
ORDERS = (
    "113-4567890-1234567",
    "114-2233445-5667788",
    "112-3344556-7788990",
    "115-6677889-9001122",
    "116-1122334-4556677",
    "111-9988776-6554433",
    "#1001",
    "#1002",
    "#1003",
    "#1004",
    "#1005",
    "#1006",
    "#1007",
)
REASONS = (Reason.damaged, Reason.no_longer_needed, Reason.size_or_fit, Reason.defective)


async def templates(now: datetime) -> list[dict[str, Any]]:
    """Real decisions, one per sandbox order and reason, with the outcome facts they are stored with."""
    settings = Settings(_env_file=None, database_url="sqlite+aiosqlite:///:memory:")  # type: ignore[call-arg]
    rows: list[dict[str, Any]] = []
    async with open_runtime(settings) as runtime:
        for order_ref in ORDERS:
            for reason in REASONS:
                request = ReturnRequest(order_ref=order_ref, reason=reason)
                order = await runtime.routing.resolve_order(request)
                decision = runtime.routing.decide(order, request, now)
                facts = facts_of(decision, order)
                rows.append(
                    {
                        "k": len(rows),
                        "channel": decision.channel,
                        "platform": decision.platform.value,
                        "classification": decision.classification.value,
                        "order_ref": decision.order.order_ref,
                        "order_id": order.order_id,
                        "queue": decision.queue.name,
                        "eligible": decision.policy.eligible,
                        "returnless": not decision.policy.return_required,
                        "returned_value": str(decision.policy.returned_value.amount),
                        "currency": order.currency,
                        "policy_id": decision.policy.id,
                        "policy_version": decision.policy.version,
                        "reason": reason.value,
                        "rule_set": facts.rule_set.id,
                        "rules": json.dumps({"rules": list(facts.rule_set.rules)}),
                        "answer": decision.model_dump(mode="json"),
                        "order_snapshot": order.model_dump(mode="json"),
                        "request": request.model_dump(mode="json", exclude={"customer_message"}),
                    }
                )
    return rows


TEMPLATES = """
  SELECT * FROM jsonb_to_recordset(CAST(:templates AS jsonb)) AS x(k int, channel text, platform text,
    classification text, order_ref text, order_id text, queue text, eligible bool, returnless bool,
    returned_value numeric, currency text, policy_id text, policy_version text, reason text,
    rule_set bigint, rules text, answer jsonb, order_snapshot jsonb, request jsonb)
"""
# Row n takes template n % T, a time in the 90 days before now, and a deadline 24 or 48 hours
# after the customer wrote (one in twenty, drawn, wrote three days earlier). `h` is a uniform draw
# in [0, 1000) from the row number, `c` another one for the A-to-z claim.
LOAD = f"""
WITH t AS ({TEMPLATES}), g AS (
  SELECT n, md5(n::text || :salt)::uuid AS id,
         CAST(:now AS timestamptz) - (n * interval '90 days') / CAST(:rows AS float8) AS created_at,
         ('x' || substr(md5(n::text || 'outcome'), 1, 8))::bit(32)::bigint % 1000 AS h,
         ('x' || substr(md5(n::text || 'claim'), 1, 8))::bit(32)::bigint % 1000 AS c,
         ('x' || substr(md5(n::text || 'late'), 1, 8))::bit(32)::bigint % 20 = 0 AS late
  FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
), d AS (
  INSERT INTO decisions (id, created_at, as_of, channel, platform, classification, order_ref, ticket_id,
    reason, queue, eligible, sla_due_at, policy_id, policy_version, sandbox, api_key_id, webhook_event_id,
    answer, order_snapshot, request)
  SELECT g.id, g.created_at, g.created_at, t.channel, t.platform, t.classification, t.order_ref,
    'T-' || g.n, t.reason, t.queue, t.eligible,
    g.created_at + CASE WHEN t.platform = 'amazon' THEN interval '24 hours' ELSE interval '48 hours' END
      - CASE WHEN g.late THEN interval '3 days' ELSE interval '0' END,
    t.policy_id, t.policy_version, true, NULL, NULL,
    t.answer || jsonb_build_object('decision_id', g.id::text, 'created_at',
      to_char(g.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'ticket_id', 'T-' || g.n),
    t.order_snapshot, t.request
  FROM g JOIN t ON t.k = g.n % CAST(:count AS int)
  RETURNING id
), o AS (
  SELECT g.*, t.*,
    g.created_at < CAST(:now AS timestamptz) - interval '3 days' AS settled,
    CASE
      WHEN t.platform = 'amazon' THEN CASE
        WHEN NOT t.eligible AND g.h < 550 THEN 'declined'
        WHEN g.h < 700 THEN 'refunded'
        WHEN g.h < 850 THEN 'closed_without_return'
        WHEN g.h < 900 THEN 'declined'
        ELSE 'open' END
      ELSE CASE
        WHEN NOT t.eligible AND g.h < 600 THEN 'declined'
        WHEN g.h < 250 THEN 'exchanged'
        WHEN g.h < 420 THEN 'store_credit'
        WHEN g.h < 800 THEN CASE WHEN t.returnless THEN 'kept_returnless' ELSE 'refunded' END
        WHEN g.h < 850 THEN 'declined'
        WHEN g.h < 900 THEN 'closed_without_return'
        ELSE 'open' END
    END AS drawn
  FROM g JOIN t ON t.k = g.n % CAST(:count AS int)
)
INSERT INTO outcomes (decision_id, created_at, channel, platform, order_id, policy_id, policy_version,
  queue, reason, sla_met, rule_set, currency, status, refunded_amount, retained_amount, in_policy,
  a_to_z_claim, resolved_at, source, detail, updated_at)
SELECT o.id, o.created_at, o.channel, o.platform, o.order_id, o.policy_id, o.policy_version, o.queue,
  o.reason, g_sla.met, o.rule_set, o.currency, s.status,
  CASE WHEN s.status IN ('refunded', 'kept_returnless') THEN o.returned_value END,
  CASE WHEN s.status IN ('exchanged', 'store_credit') THEN o.returned_value END,
  CASE WHEN o.platform = 'amazon' AND s.status IS NOT NULL THEN o.eligible END,
  o.platform = 'amazon' AND s.status IS NOT NULL AND o.c < CASE WHEN o.eligible THEN 8 ELSE 60 END,
  CASE WHEN s.status NOT IN ('open') THEN o.created_at + interval '2 days' + (o.h * interval '5 minutes') END,
  CASE WHEN s.status IS NULL THEN NULL WHEN o.platform = 'amazon' THEN 'amazon_report' ELSE 'shopify' END,
  NULL, CAST(:now AS timestamptz)
FROM o
CROSS JOIN LATERAL (SELECT CASE
    WHEN o.settled THEN o.drawn
    WHEN o.h < 150 THEN o.drawn
    WHEN o.h < 700 THEN 'open'
    ELSE NULL END AS status) AS s
CROSS JOIN LATERAL (SELECT NOT o.late AS met) AS g_sla
"""
RULE_SETS = f"""
INSERT INTO rule_sets (id, rules)
SELECT DISTINCT ON (rule_set) rule_set, CAST(rules AS jsonb) FROM ({TEMPLATES}) AS t
ON CONFLICT DO NOTHING
"""


async def load(
    engine: AsyncEngine, rows: int, now: datetime, *, chunk: int = 100_000, quiet: bool = False
) -> None:
    """Store `rows` decisions with their outcomes (the secondary indexes dropped and built again
    around the load when there are many)."""
    payload = json.dumps(await templates(now))
    rebuild = rows >= 100_000
    indexes = [*DecisionRow.__table__.indexes, *Outcome.__table__.indexes] if rebuild else []
    async with engine.begin() as connection:
        for index in indexes:
            await connection.execute(text(f"DROP INDEX IF EXISTS {index.name}"))
        await connection.execute(text(RULE_SETS), {"templates": payload})
    started = time.perf_counter()
    count = len(ORDERS) * len(REASONS)
    for first in range(1, rows + 1, chunk):
        last = min(rows, first + chunk - 1)
        async with engine.begin() as connection:
            await connection.execute(text("SET LOCAL synchronous_commit = off"))
            await connection.execute(
                text(LOAD),
                {
                    "templates": payload,
                    "salt": "outcomes",
                    "now": now,
                    "rows": rows,
                    "first": first,
                    "last": last,
                    "count": count,
                },
            )
        if not quiet:
            print(
                f"  loaded {last:,} decisions with outcomes ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    async with engine.begin() as connection:
        await connection.execute(text("SET maintenance_work_mem = '256MB'"))
        for index in indexes:
            await connection.execute(CreateIndex(index))
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM (ANALYZE) decisions"))
        await autocommit.execute(text("VACUUM (ANALYZE) outcomes"))
    if not quiet:
        print(f"  indexes built, vacuumed and analysed ({time.perf_counter() - started:.0f} s)", flush=True)


async def report(url: str) -> list[str]:
    """The outcomes by rule, as `GET /v1/stats/outcomes?group_by=rule` counts them."""
    engine = create_async_engine(url)
    try:
        from sqlalchemy.ext.asyncio import AsyncSession

        async with AsyncSession(engine) as session:
            groups = await outcome_stats.stats(session, "rule", None, None)
    finally:
        await engine.dispose()
    lines = [
        f"{'rule':36} {'decisions':>9} {'resolved':>9} {'retained':>8} {'refunded':>8} {'returnless':>10} "
        f"{'claims':>7} {'retention':>9} {'claims %':>8} {'SLA met':>7}"
    ]
    for g in groups:
        lines.append(
            f"{g['key']:36} {g['decisions']:>9,} {g['resolved']:>9,} {g['retained']:>8,} {g['refunded']:>8,} "
            f"{g['returnless']:>10,} {g['claims']:>7,} {float(g['retention_rate']):>9.1%} "
            f"{float(g['claim_rate']):>8.2%} {float(g['sla_met_rate']):>7.1%}"
        )
    return lines


async def create(admin_url: str, reuse: bool) -> tuple[str, bool]:
    """The benchmark's database (made afresh unless `reuse`), and whether it holds decisions."""
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        exists = await connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DATABASE}
        )
        if exists and not reuse:
            await connection.execute(text(f'DROP DATABASE "{DATABASE}" WITH (FORCE)'))
        if not exists or not reuse:
            await connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    await admin.dispose()
    url = make_url(admin_url).set(database=DATABASE).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url)
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        stored = await connection.scalar(text("SELECT count(*) FROM outcomes"))
    await engine.dispose()
    return url, bool(stored)


async def prepare(admin_url: str, rows: int, reuse: bool, now: datetime) -> str:
    url, stored = await create(admin_url, reuse)
    if not stored:
        print(f"loading {rows:,} decisions into {DATABASE}", flush=True)
        engine = create_async_engine(url)
        try:
            await load(engine, rows, now)
        finally:
            await engine.dispose()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--admin-url", default=ADMIN_URL, help="a PostgreSQL database to create ours from")
    parser.add_argument("--database-url", help="seed this (migrated) database instead of our own")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the database seeded by an earlier run")
    parser.add_argument("--drop", action="store_true", help="drop the benchmark's database and stop")
    args = parser.parse_args()
    if make_url(args.database_url or args.admin_url).host not in ("127.0.0.1", "localhost"):
        parser.error("the seed only targets 127.0.0.1")
    if args.drop:
        subprocess.run(
            ["psql", args.admin_url.replace("+asyncpg", ""), "-qc", f'DROP DATABASE IF EXISTS "{DATABASE}"'],
            check=True,
        )
        return
    now = datetime.now(UTC)
    if args.database_url:
        upgrade(args.database_url)

        async def seed_given() -> None:
            engine = create_async_engine(args.database_url)
            try:
                await load(engine, args.rows, now)
            finally:
                await engine.dispose()

        asyncio.run(seed_given())
        url = args.database_url
    else:
        url = asyncio.run(prepare(args.admin_url, args.rows, args.reuse, now))
    for line in asyncio.run(report(url)):
        print(line)


if __name__ == "__main__":
    main()
