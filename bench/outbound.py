"""CPU per outbound call: httpx's default transport against httpx-aiohttp's, same httpx API.

    .venv/bin/python bench/outbound.py [--calls 3000] [--concurrency 64] [--latency-ms 50]

A local upstream (aiohttp, in a process of its own so its CPU is not counted) answers every GET
after --latency-ms with a JSON body the size of an order. The client keeps --concurrency calls in
flight through one shared `httpx.AsyncClient`, as the service's connectors do, on uvloop as under
uvicorn, and reports the client process's CPU per call, calls/s and latency, for each transport.
Both runs are in the same invocation: compare the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

import httpx
import uvloop
from httpx_aiohttp import AiohttpTransport

ORDER = {
    "payload": {"AmazonOrderId": "113-4567890-1234567", "lines": [{"sku": f"SKU-{n}"} for n in range(40)]}
}


def upstream(port: int, latency: float) -> None:
    from aiohttp import web

    body = json.dumps(ORDER).encode()

    async def answer(_request: web.Request) -> web.Response:
        await asyncio.sleep(latency)
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def drive(client: httpx.AsyncClient, url: str, calls: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    remaining = calls

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            response = await client.get(url)
            response.raise_for_status()
            response.json()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies


async def measure(
    name: str, make: Callable[[], httpx.AsyncClient], url: str, args: argparse.Namespace
) -> dict[str, float | str]:
    async with make() as client:
        await drive(client, url, min(args.calls // 5, 500), args.concurrency)  # warm the pool
        cpu, wall = time.process_time(), time.perf_counter()
        latencies = await drive(client, url, args.calls, args.concurrency)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    latencies.sort()
    return {
        "transport": name,
        "calls/s": args.calls / wall,
        "cpu_us_per_call": cpu / args.calls * 1e6,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream:
        upstream(args.upstream, args.latency_ms / 1000)
        return

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--upstream", str(port), "--latency-ms", str(args.latency_ms)],
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/orders/v0/orders/113-4567890-1234567"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        timeout = httpx.Timeout(10.0, connect=5.0)
        transports: dict[str, Callable[[], httpx.AsyncClient]] = {
            "httpx (httpcore)": lambda: httpx.AsyncClient(timeout=timeout, limits=limits),
            "httpx-aiohttp": lambda: httpx.AsyncClient(
                timeout=timeout, transport=AiohttpTransport(limits=limits)
            ),
        }
        results = [uvloop.run(measure(name, make, url, args)) for name, make in transports.items()]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)

    print(f"\n{args.calls} GETs, {args.concurrency} in flight, upstream {args.latency_ms:.0f} ms, 127.0.0.1")
    print(f"{'transport':<18} {'calls/s':>8} {'CPU µs/call':>12} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        print(
            f"{r['transport']:<18} {r['calls/s']:>8.0f} {r['cpu_us_per_call']:>12.0f} "
            f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}"
        )
    default, aiohttp = (float(r["cpu_us_per_call"]) for r in results)
    print(f"CPU per call, httpx default / httpx-aiohttp: {default / aiohttp:.1f}x")


if __name__ == "__main__":
    main()
