"""The Amazon order mirror against Amazon's published limits: the same runs with the mirror on and off.

A local stand-in of the SP-API enforces getOrder 0.5 requests/s burst 30 and searchOrders 0.0056/s
burst 20 (429 QuotaExceeded when a bucket is empty) and answers after 50 ms; it holds N distinct
orders created over the last 30 days. ORDER_CHANGE goes through a local SQS-compatible server (moto's
server mode). The whole service runs in this process (ASGI app, SQLite in a temporary folder, an API
key); with the mirror on, the worker's two loops run beside it (the searchOrders sync and the
notification consumer). Reported for each mode, on a fresh stand-in and service:

- fill: time from an empty mirror to all N orders held (mirror on only);
- N route requests for the N orders, C at a time: wall time, answers by status, getOrder calls, 429s;
- 40 distinct orders at once, on a fresh getOrder bucket: decisions, 503s;
- an ORDER_CHANGE (the order cancelled): seconds from the message being on the queue to the first
  decision that shows it (routing the order every 50 ms).

Not a test: run by hand, on an idle machine if you can (it prints the load average):

    .venv/bin/python bench/order_mirror.py [--orders 1000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stand-in and the SQS server live with the tests

from app.connectors.amazon_search import SEARCH_ORDERS_LIMIT  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.main import create_app  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.services import api_keys  # noqa: E402
from app.services.api_keys import Scope  # noqa: E402
from app.services.mirror import mirror_status, seller_accounts  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.worker import mirror_work  # noqa: E402
from tests.connectors.amazon_standin import GET_ORDER_LIMIT, AmazonStandIn, orders_like  # noqa: E402
from tests.mirror_builders import SELLER_ID, TEMPLATE  # noqa: E402
from tests.sqs_server import create_queue, order_change, running_sqs, send  # noqa: E402

AS_OF = "2026-12-03T15:00:00Z"
LATENCY = 0.05


def settings_for(folder: str, standin: AmazonStandIn, sqs: str, queue: str, *, mirror: bool) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{folder}/bench.db",
        log_level="ERROR",
        log_format="json",
        channel_amazon_us_lwa_client_id="amzn1.application-oa2-client.bench",
        channel_amazon_us_lwa_client_secret="bench-secret",
        channel_amazon_us_refresh_token="Atzr|bench",
        channel_amazon_us_endpoint=standin.url,
        channel_amazon_us_lwa_token_url=standin.token_url,
        channel_amazon_us_seller_id=SELLER_ID,
        channel_amazon_us_sqs_queue_url=queue,
        channel_amazon_us_mirror_days=30,
        # Off: the mirror is never asked (and the worker's loops are not run).
        mirror_max_age_seconds=900 if mirror else 0,
        aws_region="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        aws_endpoint_url_sqs=sqs,
    )


class Service:
    """The API in this process, and with the mirror on, the worker's loops beside it."""

    def __init__(self, settings: Settings, *, mirror: bool) -> None:
        self.app = create_app(settings)
        self.mirror = mirror
        self.stop = asyncio.Event()
        self.loops: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Service:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self.runtime: Runtime = self.app.state.runtime
        async with self.runtime.database.transaction() as session:
            _row, key = await api_keys.issue(session, "bench", {Scope.route})
        self.headers = {"Authorization": f"Bearer {key}"}
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://router.test", timeout=None
        )
        return self

    def start_worker(self) -> None:
        # The worker's own loops (`python -m app worker`): the searchOrders sync and the queue's consumer.
        self.loops = [asyncio.create_task(work) for work in mirror_work(self.runtime, self.stop)]

    async def held(self) -> int:
        (account,) = seller_accounts(self.runtime.channels)
        return (await mirror_status(self.runtime.database, account)).held

    async def route(self, order_id: str) -> httpx.Response:
        body = {"order_ref": order_id, "reason": "damaged", "as_of": AS_OF}
        return await self.http.post("/v1/returns/route", json=body, headers=self.headers)

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.gather(*self.loops, return_exceptions=True)
        await self.http.aclose()
        await self._lifespan.__aexit__(None, None, None)


def standin_for(orders: dict[str, dict[str, Any]]) -> AmazonStandIn:
    return AmazonStandIn(orders, limit=GET_ORDER_LIMIT, search_limit=SEARCH_ORDERS_LIMIT, latency=LATENCY)


async def at_most(
    concurrency: int, calls: list[Callable[[], Awaitable[httpx.Response]]]
) -> list[httpx.Response]:
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(call) for call in calls))


def statuses(answers: list[httpx.Response]) -> str:
    counted = Counter(answer.status_code for answer in answers)
    return ", ".join(f"{count}x{status}" for status, count in sorted(counted.items()))


async def run_mode(mirror: bool, count: int, concurrency: int, sqs: str) -> dict[str, str]:
    orders = orders_like(TEMPLATE, count, now=datetime.now(UTC))
    ids = sorted(orders)
    changed = ids[len(ids) // 2]  # an order the 40 at once did not ask for
    report: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        database_url = f"sqlite+aiosqlite:///{folder}/bench.db"
        await asyncio.to_thread(upgrade, database_url)
        queue = await create_queue(sqs, visibility_timeout=30)

        # Fill, then N route requests C at a time.
        with standin_for(orders) as standin:
            settings = settings_for(folder, standin, sqs, queue, mirror=mirror)
            async with Service(settings, mirror=mirror) as service:
                if mirror:
                    started = time.monotonic()
                    service.start_worker()
                    while await service.held() < count:
                        await asyncio.sleep(0.05)
                    report["fill: empty mirror to all held"] = f"{time.monotonic() - started:.2f} s"
                    report["fill: searchOrders calls, 429s"] = (
                        f"{len(standin.searches)}, {standin.search_throttled}"
                    )
                else:
                    report["fill: empty mirror to all held"] = "-"
                    report["fill: searchOrders calls, 429s"] = "-"
                started = time.monotonic()
                answers = await at_most(concurrency, [lambda i=i: service.route(i) for i in ids])
                wall = time.monotonic() - started
                report[f"{count} routes, {concurrency} at a time: wall"] = f"{wall:.2f} s"
                report[f"{count} routes: answers"] = statuses(answers)
                report[f"{count} routes: getOrder calls, 429s"] = f"{len(standin.calls)}, {standin.throttled}"

        # 40 distinct orders at once, on a fresh getOrder bucket (a new stand-in and service).
        with standin_for(orders) as standin:
            settings = settings_for(folder, standin, sqs, queue, mirror=mirror)
            async with Service(settings, mirror=mirror) as service:
                started = time.monotonic()
                answers = await asyncio.gather(*(service.route(order_id) for order_id in ids[-40:]))
                report["40 at once: answers"] = statuses(answers)
                report["40 at once: wall"] = f"{time.monotonic() - started:.2f} s"
                report["40 at once: getOrder calls"] = str(len(standin.calls))

        # An ORDER_CHANGE: the order cancelled at Amazon, the message on the queue, then decisions.
        # A queue of its own: a long poll the earlier services abandoned when they stopped may still
        # be open at the server, and would take the message out of sight for the visibility timeout.
        queue = await create_queue(sqs, visibility_timeout=30)
        with standin_for(orders) as standin:
            settings = settings_for(folder, standin, sqs, queue, mirror=mirror)
            async with Service(settings, mirror=mirror) as service:
                if mirror:
                    service.start_worker()
                before = await service.route(changed)  # the order as it was, now held or cached

                def cancel(order: dict[str, Any]) -> None:
                    order["fulfillment"]["fulfillmentStatus"] = "CANCELLED"
                    order["packages"] = []

                changed_at = standin.change(changed, cancel)
                await send(
                    sqs, queue, order_change(changed, changed_at, seller_id=SELLER_ID, status="Canceled")
                )
                on_queue = time.monotonic()
                seen = None
                while time.monotonic() - on_queue < 60:
                    answer = await service.route(changed)
                    if answer.status_code == 201 and answer.json()["order"]["shipped_at"] is None:
                        seen = time.monotonic() - on_queue
                        break
                    await asyncio.sleep(0.05)
                assert before.status_code == 201
                report["ORDER_CHANGE: on the queue to the decision"] = (
                    f"{seen:.2f} s" if seen is not None else "not within 60 s"
                )
    return report


async def main_async(count: int, concurrency: int) -> None:
    with running_sqs() as sqs:
        on = await run_mode(True, count, concurrency, sqs)
        off = await run_mode(False, count, concurrency, sqs)
    width = max(len(name) for name in on) + 2
    print(f"{'':{width}} {'mirror on':>24} {'mirror off':>24}")
    for name in on:
        print(f"{name:{width}} {on[name]:>24} {off.get(name, '-'):>24}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1000, help="distinct orders, created over 30 days")
    parser.add_argument("--concurrency", type=int, default=32, help="route requests in flight at once")
    args = parser.parse_args()
    print(
        f"stand-in: getOrder {GET_ORDER_LIMIT.rate:g}/s burst {GET_ORDER_LIMIT.burst}, searchOrders "
        f"{SEARCH_ORDERS_LIMIT.rate:g}/s burst {SEARCH_ORDERS_LIMIT.burst}, {LATENCY * 1000:g} ms; "
        f"{args.orders} orders; load average before: {_load()}"
    )
    asyncio.run(main_async(args.orders, args.concurrency))
    print(f"load average after: {_load()}")


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


if __name__ == "__main__":
    main()
