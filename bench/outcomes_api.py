"""`GET /v1/stats/outcomes` over 1,000,000 decisions with outcomes on PostgreSQL: p50 and p99.

    python bench/outcomes_api.py              # seeds its own database (bench/seed_outcomes.py), then measures
    python bench/outcomes_api.py --reuse      # measures again on the database seeded before
    python bench/outcomes_api.py --drop       # removes that database

The API runs as `python -m app serve` on a free loopback port; requests are sequential, so each
figure is one request's latency. Every grouping is measured over all the decisions and over the
last 7 days; the plans of the underlying statement are printed first.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.routers.outcomes import OutcomeGroupBy  # noqa: E402
from bench._serve import free_port, running, summary  # noqa: E402
from bench.decisions_api import issue_key  # noqa: E402
from bench.seed_outcomes import ADMIN_URL, DATABASE, prepare  # noqa: E402

GROUPINGS = [grouping.value for grouping in OutcomeGroupBy]  # every one the API offers


async def explain(url: str, since: datetime) -> None:
    engine = create_async_engine(url)
    cases = {
        "by rule set, all": "SELECT rule_set, currency, count(*), sum(CASE WHEN status IN ('exchanged', "
        "'store_credit') THEN 1 ELSE 0 END), sum(refunded_amount) FROM outcomes GROUP BY rule_set, currency",
        "by channel, last 7 days": "SELECT channel, currency, count(*) FROM outcomes "
        "WHERE created_at >= :since GROUP BY channel, currency",
    }
    async with engine.connect() as connection:
        stored = await connection.scalar(text("SELECT count(*) FROM outcomes"))
        size = await connection.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('outcomes'))"))
        sets = await connection.scalar(text("SELECT count(*) FROM rule_sets"))
        print(f"{stored:,} outcome rows ({size}), {sets} rule sets", flush=True)
        for name, statement in cases.items():
            plan = await connection.execute(
                text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement), {"since": since}
            )
            print(f"EXPLAIN {name}:")
            for (line,) in plan:
                if any(word in line for word in ("Scan", "Aggregate", "Execution Time", "Workers")):
                    print(f"    {line.strip()}")
    await engine.dispose()


def measure(base_url: str, key: str, since: datetime, requests: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    cases: dict[str, dict[str, Any]] = {}
    for group_by in GROUPINGS:
        cases[f"{group_by}, all"] = {"group_by": group_by}
        cases[f"{group_by}, last 7 days"] = {"group_by": group_by, "since": since.isoformat()}
    with httpx.Client(base_url=base_url, headers=headers, timeout=120.0) as http:
        for name, params in cases.items():
            first = http.get("/v1/stats/outcomes", params=params)
            assert first.status_code == 200, first.text
            latencies = []
            for _ in range(requests):
                started = time.perf_counter()
                response = http.get("/v1/stats/outcomes", params=params)
                latencies.append(1000 * (time.perf_counter() - started))
                assert response.status_code == 200
            groups = first.json()["groups"]
            counted = sum(g["decisions"] for g in groups)
            print(
                f"{name:24} {summary(latencies)}  ({len(groups)} groups, {counted:,} decision-counts)",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30, help="per case")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--drop", action="store_true")
    args = parser.parse_args()
    if make_url(args.admin_url).host not in ("127.0.0.1", "localhost"):
        parser.error("the benchmark only targets 127.0.0.1")
    if args.drop:
        subprocess.run(
            ["psql", args.admin_url.replace("+asyncpg", ""), "-qc", f'DROP DATABASE IF EXISTS "{DATABASE}"'],
            check=True,
        )
        return
    url = asyncio.run(prepare(args.admin_url, args.rows, args.reuse, datetime.now(UTC)))
    since = datetime.now(UTC) - timedelta(days=7)
    asyncio.run(explain(url, since))
    key = issue_key(url)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}
    with running(["serve", "--port", str(port)], env, ready_url=f"{base_url}/readyz"):
        measure(base_url, key, since, args.requests)


if __name__ == "__main__":
    main()
