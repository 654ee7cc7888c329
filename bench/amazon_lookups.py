"""Upstream efficiency of live Amazon lookups: N concurrent route requests over M distinct orders.

The whole service (ASGI app, SQLite in a temporary folder, API key) routes N returns at once, for
M distinct Amazon orders, against a local stand-in of the SP-API that enforces the getOrder usage
plan (a token bucket, 429 QuotaExceeded when empty) and answers after a fixed latency. Reports:

- upstream calls per distinct order (goal 1.0: coalescing and the cache),
- 429s received (goal 0: our bucket keeps to Amazon's),
- achieved rate as a fraction of the allowed rate (goal >= 0.95: our bucket wastes no tokens):
  the calls made over those the plan allowed between the first arrival and the last,
  calls / (burst + rate * (last - first)).

Amazon's plan is 0.5/s, burst 30; a run at that rate over 100 orders takes over two minutes, so
the defaults scale it (same arithmetic, faster clock). Run by hand:

    .venv/bin/python bench/amazon_lookups.py [--requests 1000] [--orders 100] [--rate 10] [--burst 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stand-in lives with the tests

from app.connectors.ratelimit import Limit  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.main import create_app  # noqa: E402
from app.services import api_keys  # noqa: E402
from app.services.api_keys import Scope  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.connectors.amazon_standin import AmazonStandIn  # noqa: E402

TEMPLATE = ROOT / "app" / "connectors" / "fixtures" / "amazon_us" / "113-4567890-1234567.json"


async def run(requests: int, orders: int, limit: Limit, latency: float, max_wait: float) -> dict[str, float]:
    order_ids = [f"113-{i:07d}-0000001" for i in range(orders)]
    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    with (
        tempfile.TemporaryDirectory() as folder,
        AmazonStandIn(template=template, limit=limit, latency=latency) as standin,
    ):
        database_url = f"sqlite+aiosqlite:///{folder}/bench.db"
        await asyncio.to_thread(upgrade, database_url)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=database_url,
            log_level="ERROR",
            log_format="json",
            channel_amazon_us_lwa_client_id="amzn1.application-oa2-client.bench",
            channel_amazon_us_lwa_client_secret="bench-secret",
            channel_amazon_us_refresh_token="Atzr|bench",
            channel_amazon_us_endpoint=standin.url,
            channel_amazon_us_lwa_token_url=standin.token_url,
            channel_amazon_us_get_order_rate=limit.rate,
            channel_amazon_us_get_order_burst=limit.burst,
            upstream_max_wait_seconds=max_wait,
            order_cache_max_age_seconds=600,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            runtime = app.state.runtime
            async with runtime.database.transaction() as session:
                _row, key = await api_keys.issue(session, "bench", {Scope.route})
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://router.test", timeout=None
            ) as http:
                bodies = [
                    {"order_ref": order_ids[i % orders], "reason": "damaged", "as_of": "2026-12-03T15:00:00Z"}
                    for i in range(requests)
                ]
                started = time.monotonic()
                answers = await asyncio.gather(
                    *(
                        http.post("/v1/returns/route", json=body, headers={"Authorization": f"Bearer {key}"})
                        for body in bodies
                    )
                )
                wall = time.monotonic() - started
        arrivals = sorted(at for at, _ in standin.calls)
        statuses = Counter(answer.status_code for answer in answers)
        span = arrivals[-1] - arrivals[0] if arrivals else 0.0
        achieved = len(arrivals) / (limit.burst + limit.rate * span)
        return {
            "route requests": requests,
            "distinct orders": orders,
            "answers 201": statuses.get(201, 0),
            "other answers": sum(count for status, count in statuses.items() if status != 201),
            "upstream calls": len(arrivals),
            "upstream calls per distinct order": len(arrivals) / orders,
            "429s received": standin.throttled,
            "achieved rate / allowed rate": achieved,
            "token calls": standin.token_calls,
            "wall seconds": wall,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000, help="N concurrent route requests")
    parser.add_argument("--orders", type=int, default=100, help="M distinct Amazon orders among them")
    parser.add_argument("--rate", type=float, default=10.0, help="getOrder tokens a second (Amazon: 0.5)")
    parser.add_argument("--burst", type=int, default=10, help="getOrder burst (Amazon: 30)")
    parser.add_argument("--latency", type=float, default=0.2, help="the stand-in's answer time, seconds")
    parser.add_argument("--max-wait", type=float, default=60.0, help="UPSTREAM_MAX_WAIT_SECONDS")
    args = parser.parse_args()
    limit = Limit(rate=args.rate, burst=args.burst)
    print(  # noqa: T201 - a benchmark reports on standard output
        f"N={args.requests} route requests over M={args.orders} orders; stand-in plan "
        f"{limit.rate:g}/s burst {limit.burst}, latency {args.latency * 1000:g} ms"
    )
    report = asyncio.run(run(args.requests, args.orders, limit, args.latency, args.max_wait))
    for name, value in report.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"  {name:36} {shown}")  # noqa: T201


if __name__ == "__main__":
    main()
