"""`GET /v1/decisions` and `GET /v1/stats/decisions` over 1,000,000 stored decisions on PostgreSQL.

    python bench/decisions_api.py                 # builds its own database, then measures
    python bench/decisions_api.py --reuse         # measures again on the database built before
    python bench/decisions_api.py --drop          # removes that database

The decisions are real answers of the routing pipeline (four sandbox orders: Amazon eligible and
not, Shopify retention and review), copied server-side with `generate_series`: spread over 90 days,
ten reasons, about one in twenty made after its deadline. The secondary indexes are dropped for the
load and built again from the models afterwards (faster than maintaining them row by row), then the
table is vacuumed and analysed. The API runs as `python -m app serve` on a free loopback port;
requests are sequential, so each figure is one request's latency. Bounded: the load is the long part
(a few minutes on a shared 2-core machine); each case makes --requests requests.
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

import httpx
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateIndex

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.db.decisions import PagePosition  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.db.tables import Decision as DecisionRow  # noqa: E402
from app.domain import Reason, ReturnRequest  # noqa: E402
from app.runtime import open_runtime  # noqa: E402
from app.services.decision_pages import encode_cursor  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench._serve import ROOT, free_port, running, summary  # noqa: E402

ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DATABASE = "returns_router_bench_decisions"
TEMPLATE_ORDERS = ("113-4567890-1234567", "114-2233445-5667788", "#1001", "#1005")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def database_url(admin_url: str) -> str:
    return make_url(admin_url).set(database=DATABASE).render_as_string(hide_password=False)


async def templates() -> list[dict[str, Any]]:
    """Real decisions, one per template order, as the service stores them."""
    settings = Settings(_env_file=None, database_url="sqlite+aiosqlite:///:memory:")  # type: ignore[call-arg]
    rows = []
    async with open_runtime(settings) as runtime:
        for order_ref in TEMPLATE_ORDERS:
            request = ReturnRequest(order_ref=order_ref, reason=Reason.damaged)
            order = await runtime.routing.resolve_order(request)
            decision = runtime.routing.decide(order, request, NOW)
            rows.append(
                {
                    "k": len(rows),
                    "channel": decision.channel,
                    "platform": decision.platform.value,
                    "classification": decision.classification.value,
                    "order_ref": decision.order.order_ref,
                    "queue": decision.queue.name,
                    "eligible": decision.policy.eligible,
                    "policy_id": decision.policy.id,
                    "policy_version": decision.policy.version,
                    "answer": decision.model_dump(mode="json"),
                    "order_snapshot": order.model_dump(mode="json"),
                    "request": request.model_dump(mode="json", exclude={"customer_message"}),
                }
            )
    return rows


# One statement per chunk: row n takes template n % 4, a reason, a time in the 90 days before NOW
# and a deadline 24 or 48 hours after the customer wrote (every twentieth wrote three days earlier).
LOAD = """
WITH t AS (
  SELECT * FROM jsonb_to_recordset(CAST(:templates AS jsonb)) AS x(k int,
    channel text, platform text, classification text, order_ref text, queue text, eligible bool,
    policy_id text, policy_version text, answer jsonb, order_snapshot jsonb, request jsonb)
), g AS (
  SELECT n, md5(n::text || :salt)::uuid AS id,
         CAST(:now AS timestamptz) - (n * interval '7776 seconds') / 1000 AS created_at,
         (ARRAY['damaged','defective','wrong_item','not_as_described','missing_parts','no_longer_needed',
                'size_or_fit','arrived_late','better_price','other'])[1 + n % 10] AS reason
  FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
)
INSERT INTO decisions (id, created_at, as_of, channel, platform, classification, order_ref, ticket_id,
  reason, queue, eligible, sla_due_at, policy_id, policy_version, sandbox, api_key_id, webhook_event_id,
  answer, order_snapshot, request)
SELECT g.id, g.created_at, g.created_at, t.channel, t.platform, t.classification, t.order_ref,
  CASE WHEN g.n % 3 = 0 THEN NULL ELSE 'T-' || g.n END,
  g.reason, t.queue, t.eligible,
  g.created_at + CASE WHEN t.platform = 'amazon' THEN interval '24 hours' ELSE interval '48 hours' END
    - CASE WHEN g.n % 20 = 0 THEN interval '3 days' ELSE interval '0' END,
  t.policy_id, t.policy_version, true, NULL, NULL,
  t.answer || jsonb_build_object('decision_id', g.id::text, 'created_at',
    to_char(g.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'reason', g.reason,
    'ticket_id', CASE WHEN g.n % 3 = 0 THEN NULL ELSE 'T-' || g.n END),
  t.order_snapshot, t.request
FROM g JOIN t ON t.k = g.n % 4
"""


async def build(engine: AsyncEngine, rows: int) -> None:
    secondary = [index for index in DecisionRow.__table__.indexes]
    async with engine.begin() as connection:
        for index in secondary:
            await connection.execute(text(f"DROP INDEX IF EXISTS {index.name}"))
    payload = json.dumps(await templates())
    chunk = 100_000
    started = time.perf_counter()
    for first in range(1, rows + 1, chunk):
        last = min(rows, first + chunk - 1)
        async with engine.begin() as connection:
            await connection.execute(text("SET LOCAL synchronous_commit = off"))
            await connection.execute(
                text(LOAD),
                {"templates": payload, "salt": "bench", "now": NOW, "first": first, "last": last},
            )
        print(f"  loaded {last:,} decisions ({time.perf_counter() - started:.0f} s)", flush=True)
    async with engine.begin() as connection:
        await connection.execute(text("SET maintenance_work_mem = '256MB'"))
        for index in secondary:
            await connection.execute(CreateIndex(index))
    print(f"  indexes built ({time.perf_counter() - started:.0f} s)", flush=True)
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM (ANALYZE) decisions"))
    print(f"  vacuumed and analysed ({time.perf_counter() - started:.0f} s)", flush=True)


async def prepare(admin_url: str, rows: int, reuse: bool) -> tuple[str, PagePosition]:
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
    url = database_url(admin_url)
    await asyncio.to_thread(upgrade, url)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            stored = await connection.scalar(text("SELECT count(*) FROM decisions"))
        if not stored:
            print(f"loading {rows:,} decisions into {DATABASE}", flush=True)
            await build(engine, rows)
        async with engine.connect() as connection:
            stored = await connection.scalar(text("SELECT count(*) FROM decisions"))
            size = await connection.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('decisions'))"))
            # A position nine tenths of the way down: what a reader far into the list asks for.
            deep = (
                await connection.execute(
                    text(
                        "SELECT created_at, id FROM decisions ORDER BY created_at DESC, id DESC "
                        "OFFSET :o LIMIT 1"
                    ),
                    {"o": int(stored * 0.9)},
                )
            ).one()
            await explain(connection, deep)
        print(f"{stored:,} decisions stored ({size})", flush=True)
        return url, PagePosition(deep.created_at, deep.id)
    finally:
        await engine.dispose()


async def explain(connection: Any, deep: Any) -> None:
    """The plans of the statements the endpoints run (their shape, from the SQLAlchemy queries)."""
    cases = {
        "first page": "SELECT created_at, id, answer FROM decisions "
        "ORDER BY created_at DESC, id DESC LIMIT 51",
        "deep page": "SELECT created_at, id, answer FROM decisions WHERE (created_at, id) < (:c, :i) "
        "ORDER BY created_at DESC, id DESC LIMIT 51",
        "filtered page": "SELECT created_at, id, answer FROM decisions WHERE channel = 'shopify_ca' "
        "AND eligible = true ORDER BY created_at DESC, id DESC LIMIT 51",
        "stats by channel, all": "SELECT channel, count(*), sum(CASE WHEN eligible THEN 1 ELSE 0 END), "
        "sum(CASE WHEN sla_due_at <= created_at THEN 1 ELSE 0 END) FROM decisions GROUP BY channel",
        "stats by day, all": "SELECT CAST(timezone('UTC', created_at) AS date) AS k, count(*) "
        "FROM decisions GROUP BY k ORDER BY k",
    }
    for name, statement in cases.items():
        plan = await connection.execute(
            text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement),
            {"c": deep.created_at, "i": deep.id, "since": datetime(2026, 11, 19, 12, tzinfo=UTC)},
        )
        lines = [row[0] for row in plan]
        print(f"EXPLAIN {name}:")
        for line in lines:
            if "Scan" in line or "Execution Time" in line or "Aggregate" in line or "Sort" in line:
                print(f"    {line.strip()}")


def measure(base_url: str, key: str, deep: PagePosition, requests: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "list, first page (50)": ("/v1/decisions", {}),
        "list, deep cursor (90% down)": ("/v1/decisions", {"cursor": encode_cursor(deep)}),
        "list, channel + eligible": ("/v1/decisions", {"channel": "shopify_ca", "eligible": "true"}),
        "list, queue = shopify-review": ("/v1/decisions", {"queue": "shopify-review"}),
        "list, eligible = false": ("/v1/decisions", {"eligible": "false"}),
        "list, ticket_id": ("/v1/decisions", {"ticket_id": "T-500000"}),
        "list, last 24 h": ("/v1/decisions", {"created_after": "2026-11-25T12:00:00Z"}),
        "stats by channel, all 1M": ("/v1/stats/decisions", {"group_by": "channel"}),
        "stats by reason, all 1M": ("/v1/stats/decisions", {"group_by": "reason"}),
        "stats by day, all 1M": ("/v1/stats/decisions", {"group_by": "day"}),
        "stats by queue, last 7 days": (
            "/v1/stats/decisions",
            {"group_by": "queue", "created_after": "2026-11-19T12:00:00Z"},
        ),
    }
    with httpx.Client(base_url=base_url, headers=headers, timeout=60.0) as http:
        for name, (path, params) in cases.items():
            first = http.get(path, params=params)
            assert first.status_code == 200, first.text
            latencies = []
            for _ in range(requests):
                started = time.perf_counter()
                response = http.get(path, params=params)
                latencies.append(1000 * (time.perf_counter() - started))
                assert response.status_code == 200
            body = first.json()
            size = len(body.get("items", body.get("groups", [])))
            print(f"{name:32} {summary(latencies)}  ({size} items, {len(first.content):,} bytes)", flush=True)


def issue_key(url: str) -> str:
    created = subprocess.run(
        [sys.executable, "-m", "app", "keys", "create", "--name", "bench", "--scope", "read"],
        cwd=ROOT,
        env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return created.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--admin-url", default=ADMIN_URL, help="a PostgreSQL database to create ours from")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30, help="per case")
    parser.add_argument("--reuse", action="store_true", help="keep the database built by an earlier run")
    parser.add_argument("--drop", action="store_true", help="drop the benchmark's database and stop")
    args = parser.parse_args()
    if make_url(args.admin_url).host not in ("127.0.0.1", "localhost"):
        parser.error("the benchmark only targets 127.0.0.1")
    if args.drop:
        subprocess.run(
            ["psql", args.admin_url.replace("+asyncpg", ""), "-qc", f'DROP DATABASE IF EXISTS "{DATABASE}"'],
            check=True,
        )
        return
    url, deep = asyncio.run(prepare(args.admin_url, args.rows, args.reuse))
    key = issue_key(url)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}
    with running(["serve", "--port", str(port)], env, ready_url=f"{base_url}/readyz"):
        measure(base_url, key, deep, args.requests)


if __name__ == "__main__":
    main()
