"""Hostile drafts against `POST /v1/policies/simulate`: each attack's answer and time, how long
`/healthz` stalled meanwhile, and route p50 alone and while three big drafts run.

    .venv/bin/python bench/hostile_drafts.py [--decisions 1000] [--rules 1000] [--only alias_bomb ...]
    .venv/bin/python bench/hostile_drafts.py --root /tmp/older-checkout   # the same, on another checkout

Starts `python -m app serve` (as production runs it) on a free loopback port, in a PostgreSQL database
of its own, created and dropped here; stores --decisions Shopify decisions through the API (sandbox
orders), then sends each attack to a fresh server, with a client timeout of --timeout seconds, while a
probe asks `/healthz` every 50 ms. The load part routes with --connections concurrent clients for
--seconds alone, then again while three drafts (the shipped policy and --load-rules more rules) replay
--decisions decisions each. Before each attack, one honest simulation warms the server up.
Bounded in count and time; everything it starts it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.route import create_database, drop_database, free_port, start, stop  # noqa: E402
from bench.seed_decisions import SHOPIFY_ORDERS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SHIPPED = (ROOT / "app" / "policy" / "data" / "shopify-ca-default.yaml").read_text(encoding="utf-8")
REASONS = ("size_or_fit", "damaged", "no_longer_needed", "defective", "other")


def alias_bomb(levels: int = 7, fan_out: int = 9) -> str:
    """Each level a list naming the level before `fan_out` times: `fan_out ** levels` strings expanded."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * fan_out)}]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * fan_out)}]" for n in range(1, levels + 1)]
    return SHIPPED.replace("must:\n", "x-anchors:\n" + "".join(f"  {line}\n" for line in lines) + "must:\n")


def big_draft(rules: int) -> str:
    """The shipped policy with `rules` more rules, each cheap to read and all checked for every decision."""
    extra = "".join(
        f"  - {{id: r{n}, when: {{fault: customer}}, then: {{review: true}}}}\n" for n in range(rules)
    )
    return SHIPPED.replace("\nlocales:", extra + "\nlocales:")


ATTACKS: dict[str, Callable[[argparse.Namespace], str]] = {
    "alias_bomb": lambda args: alias_bomb(args.bomb_levels),
    "self_alias": lambda args: SHIPPED.replace("must:\n", "must: &loop [*loop]\nx-must:\n"),
    "deep_list": lambda args: SHIPPED.replace("must:\n", "must: " + "[" * 20_000 + "]" * 20_000 + "\nx:\n"),
    "long_integer": lambda args: SHIPPED.replace("  days: 30 ", "  days: " + "9" * 5_000 + " "),
    "huge_window": lambda args: SHIPPED.replace("  days: 30 ", "  days: 99999999999 "),
    "big_draft": lambda args: big_draft(args.rules),
}


@dataclass
class Probe:
    """Asks /healthz every 50 ms in a thread; keeps the slowest answer (or the longest silence)."""

    url: str
    worst_ms: float = 0.0
    running: bool = True

    def run(self) -> None:
        with httpx.Client(timeout=120) as client:
            while self.running:
                started = time.perf_counter()
                try:
                    client.get(self.url)
                except httpx.HTTPError:
                    pass
                self.worst_ms = max(self.worst_ms, (time.perf_counter() - started) * 1000)
                time.sleep(0.05)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def seed(base: str, authorization: str, count: int) -> None:
    start_at = datetime(2026, 11, 20, tzinfo=UTC)
    bodies = [
        {
            "order_ref": SHOPIFY_ORDERS[n % len(SHOPIFY_ORDERS)],
            "reason": REASONS[n % len(REASONS)],
            "as_of": (start_at + timedelta(hours=n % 900)).isoformat().replace("+00:00", "Z"),
        }
        for n in range(count)
    ]
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(base_url=base, timeout=30, headers={"Authorization": authorization}) as http:

        async def one_client() -> None:
            while queue:
                body = queue.pop()
                answer = await http.post("/v1/returns/route", json=body)
                assert answer.status_code == 201, answer.text

        await asyncio.gather(*(one_client() for _ in range(8)))


async def route_latencies(base: str, authorization: str, seconds: float, connections: int) -> list[float]:
    latencies: list[float] = []
    body = {"order_ref": "#1001", "reason": "size_or_fit", "as_of": "2026-11-26T15:00:00Z"}
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": authorization}) as http:

        async def one_client() -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                answer = await http.post("/v1/returns/route", json=body)
                assert answer.status_code == 201, answer.text
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(one_client() for _ in range(connections)))
    return latencies


def simulate(base: str, authorization: str, draft: str, limit: int, timeout: float) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        answer = httpx.post(
            f"{base}/v1/policies/simulate",
            json={"policy": draft, "limit": limit},
            headers={"Authorization": authorization},
            timeout=timeout,
        )
    except httpx.TimeoutException:
        return f"no answer in {timeout:.0f} s", time.perf_counter() - started
    elapsed = time.perf_counter() - started
    if answer.headers.get("content-type", "").startswith("application/problem+json"):
        problem = answer.json()
        return f"{answer.status_code} {problem.get('code')}: {problem.get('detail', '')[:90]}", elapsed
    summary = answer.json() if answer.status_code == 200 else {}
    said = f"replayed {summary.get('replayed')}, truncated {summary.get('truncated')}" if summary else ""
    return f"{answer.status_code} {said or answer.text[:90]}", elapsed


async def load_with_drafts(
    base: str, route_key: str, read_key: str, args: argparse.Namespace
) -> tuple[list[float], list[tuple[str, float]]]:
    draft = big_draft(args.load_rules)
    loop = asyncio.get_running_loop()
    drafts = [
        loop.run_in_executor(None, simulate, base, read_key, draft, args.decisions, args.timeout)
        for _ in range(3)
    ]
    await asyncio.sleep(0.5)  # the drafts are in the server before the measured routing starts
    latencies = await route_latencies(base, route_key, args.seconds, args.connections)
    return latencies, list(await asyncio.gather(*drafts))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to serve")
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--rules", type=int, default=1000, help="rules added to the big_draft attack")
    parser.add_argument("--load-rules", type=int, default=195, help="rules added to each draft of the load")
    parser.add_argument("--bomb-levels", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a client waits for an answer")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of routing per load phase")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--only", nargs="*", default=[*ATTACKS, "load"])
    args = parser.parse_args()

    name = f"returns_router_drafts_{uuid.uuid4().hex[:8]}"
    dsn = args.database_url.rsplit("/", 1)[0] + "/" + name
    asyncio.run(create_database(args.database_url, name))
    work = Path(tempfile.mkdtemp(prefix="bench-drafts-"))
    env = {
        "DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
    }
    try:
        keys = {}
        for scope in ("route", "read"):
            issued = subprocess.run(
                [PYTHON, "-m", "app", "keys", "create", "--name", f"bench-{scope}", "--scope", scope],
                cwd=args.root, env={**os.environ, **env}, capture_output=True, text=True, check=True,
            )  # fmt: skip
            keys[scope] = "Bearer " + issued.stdout.strip().splitlines()[-1]

        def serve() -> tuple[subprocess.Popen[bytes], str]:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            command = [PYTHON, "-m", "app", "serve", "--port", str(port)]
            return start(command, env, f"{base}/readyz", work / "serve.log", args.root), base

        process, base = serve()
        try:
            asyncio.run(seed(base, keys["route"], args.decisions))
        finally:
            stop(process)

        print(f"{args.decisions} Shopify decisions stored; client timeout {args.timeout:.0f} s\n")
        print(f"{'attack':<14} {'size':>9} {'answer':<70} {'time':>8} {'/healthz worst':>15}")
        warm_ups: list[float] = []
        for attack, build in ATTACKS.items():
            if attack not in args.only:
                continue
            draft = build(args)
            process, base = serve()  # a fresh server: one attack's leftovers never slow the next
            try:
                # An honest simulation first: what a server does once (start a worker) is not the attack's.
                warm_answer, warm = simulate(base, keys["read"], SHIPPED, 1, args.timeout)
                assert warm_answer.startswith("200"), warm_answer
                warm_ups.append(warm)
                probe = Probe(f"{base}/healthz")
                thread = threading.Thread(target=probe.run, daemon=True)
                thread.start()
                answer, elapsed = simulate(base, keys["read"], draft, args.decisions, args.timeout)
                probe.running = False
                thread.join(timeout=130)
            finally:
                stop(process)
            print(
                f"{attack:<14} {len(draft):>9,} {answer:<70.70} {elapsed:>7.2f}s {probe.worst_ms:>12.0f} ms",
                flush=True,
            )

        if warm_ups:
            print(
                f"(before each, one simulation of the shipped policy: {min(warm_ups):.2f}"
                f" to {max(warm_ups):.2f} s)"
            )

        if "load" in args.only:
            process, base = serve()
            try:
                asyncio.run(route_latencies(base, keys["route"], 2, args.connections))  # warm-up
                alone = asyncio.run(route_latencies(base, keys["route"], args.seconds, args.connections))
                loaded, answers = asyncio.run(load_with_drafts(base, keys["route"], keys["read"], args))
            finally:
                stop(process)
            print(f"\nroute, {args.connections} clients, {args.seconds:.0f} s each:")
            drafts_label = f"with 3 drafts, +{args.load_rules} rules"
            for label, latencies in (("alone", alone), (drafts_label, loaded)):
                print(
                    f"  {label:<28} n={len(latencies):>5} p50 {percentile(latencies, 0.5):7.1f} ms"
                    f"  p99 {percentile(latencies, 0.99):7.1f} ms"
                )
            for answer, elapsed in answers:
                print(f"  draft: {answer[:90]} in {elapsed:.1f} s")
    finally:
        asyncio.run(drop_database(args.database_url, name))


if __name__ == "__main__":
    main()
