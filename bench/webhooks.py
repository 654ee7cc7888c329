"""Webhook acknowledgement latency at a steady rate: `POST /webhooks/shopify`, signed, on loopback.

Against a running service (its secret must be one of CHANNEL_SHOPIFY_CA_WEBHOOK_SECRETS):

    CHANNEL_SHOPIFY_CA_WEBHOOK_SECRETS=bench-secret python -m app serve &
    CHANNEL_SHOPIFY_CA_WEBHOOK_SECRETS=bench-secret python -m app worker &
    python bench/webhooks.py --url http://127.0.0.1:8000 --secret bench-secret --rate 100 --duration 20

or let it start `serve` and `worker` itself on a database of your choosing (PostgreSQL here):

    python bench/webhooks.py --spawn postgresql+asyncpg://postgres@127.0.0.1:5432/bench_webhooks

Open loop: request i is sent at start + i/rate whatever the answers, so a slow answer does not slow
the load; the send lag shows when the client itself fell behind. Bounded to 120 s and 127.0.0.1.
Every event is a distinct `returns/request` for sandbox order #1001, so a running worker turns each
into a decision: the acknowledgement is measured while that work goes on beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._serve import free_port, running, summary  # noqa: E402
from tests.webhook_builders import delivery, return_request_payload  # noqa: E402

MAX_DURATION = 120.0
MAX_IN_FLIGHT = 256


async def load(url: str, secret: str, rate: float, duration: float) -> None:
    latencies: list[float] = []
    lags: list[float] = []
    failures: dict[str, int] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0) as http:
        in_flight: set[asyncio.Task[None]] = set()

        async def send(number: int, scheduled: float) -> None:
            body, headers = delivery(
                return_request_payload(return_id=10_000_000 + number),
                webhook_id=str(uuid.uuid4()),
                secret=secret,
                triggered_at="2026-11-20T15:00:00Z",
            )
            started = time.perf_counter()
            lags.append(1000 * (started - scheduled))
            try:
                response = await http.post("/webhooks/shopify", content=body, headers=headers)
            except httpx.HTTPError as error:
                failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
                return
            if response.status_code != 200:
                failures[str(response.status_code)] = failures.get(str(response.status_code), 0) + 1
                return
            latencies.append(1000 * (time.perf_counter() - started))

        total = int(rate * duration)
        start = time.perf_counter()
        for number in range(total):
            scheduled = start + number / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            if len(in_flight) >= MAX_IN_FLIGHT:
                failures["client_saturated"] = failures.get("client_saturated", 0) + 1
                continue
            task = asyncio.create_task(send(number, scheduled))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
        elapsed = time.perf_counter() - start

    print(f"webhook ack, {rate:g} req/s for {duration:g} s ({total} sent in {elapsed:.1f} s)")
    print(f"  latency: {summary(latencies)}")
    print(f"  send lag (client behind schedule): {summary(lags)}")
    print(f"  failures: {failures or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--secret", default="bench-secret")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=20.0, help=f"seconds (at most {MAX_DURATION:g})")
    parser.add_argument("--spawn", metavar="DATABASE_URL", help="start serve and worker on this database")
    parser.add_argument("--without-worker", action="store_true", help="with --spawn: the API alone")
    args = parser.parse_args()
    duration = min(args.duration, MAX_DURATION)
    if args.spawn is None:
        if urlparse(args.url).hostname not in ("127.0.0.1", "localhost"):
            parser.error("the benchmark only targets 127.0.0.1")
        asyncio.run(load(args.url, args.secret, args.rate, duration))
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "DATABASE_URL": args.spawn,
        "CHANNEL_SHOPIFY_CA_WEBHOOK_SECRETS": args.secret,
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
    }
    worker = ["worker"] if not args.without_worker else None
    with running(["serve", "--port", str(port)], env, ready_url=f"{url}/readyz"):
        with running(worker, env) if worker else contextlib.nullcontext():
            asyncio.run(load(url, args.secret, args.rate, duration))


if __name__ == "__main__":
    main()
