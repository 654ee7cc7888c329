"""Hostile load and a sick database against `python -m app serve`, on 127.0.0.1: each attack and its answer.

    python bench/hostile.py                    # this checkout
    python bench/hostile.py --tree /path/to/an/older/checkout

It creates a PostgreSQL database of its own (dropped at the end), starts two replicas of `serve` on it
(the first through a TCP proxy it controls), a stand-in for Shopify's Admin API (tests/fakes) on a
loopback port, and prints one line per attack: what was sent, the answer (status, or what happened)
and how long it took. Every wait is bounded (`--bound`, 45 s by default); the whole run takes a few
minutes, most of it in the database faults of an older checkout that waits on them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._serve import free_port  # noqa: E402
from tests.fakes.shopify_admin import TOKEN, FakeShopify  # noqa: E402
from tests.webhook_builders import WEBHOOK_SECRET, delivery, return_request_payload  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-20T15:00:00Z"
ORDER_1001 = "gid://shopify/Order/450789469"
ORDER_1003 = "gid://shopify/Order/450789471"
SLOW_CLIENTS = 400
SCOPES = ["--scope", "route", "--scope", "read", "--scope", "act"]


class Proxy:
    """TCP proxy to PostgreSQL that can turn into a black hole: connections kept, bytes dropped."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.black_hole = False
        self.port = 0

    async def start(self) -> None:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer), return_exceptions=True
        )
        for end in (writer, upstream_writer):
            end.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if not self.black_hole:
                    writer.write(data)
                    await writer.drain()
        writer.transport.abort()


def shopify_app(fake: FakeShopify) -> Callable[..., Awaitable[None]]:
    """The fake Admin API as an ASGI app, for the replicas to call over HTTP."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        request = httpx.Request(scope["method"], f"http://fake{scope['path']}", headers=headers, content=body)
        response = await fake.handle(request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": response.content})

    return app


class Bench:
    def __init__(self, tree: Path, base_url: str, bound: float) -> None:
        self.tree = tree
        self.base = make_url(base_url)
        self.bound = bound
        self.rows: list[tuple[str, str, str]] = []
        self.fake = FakeShopify.with_fixtures()

    def row(self, attack: str, answer: str, took: float | None) -> None:
        seconds = "" if took is None else f"{took:.2f} s"
        self.rows.append((attack, answer, seconds))
        print(f"{attack:<58} | {answer:<52} | {seconds}", flush=True)

    async def timed(self, call: Awaitable[httpx.Response]) -> tuple[str, float]:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.bound):
                response = await call
        except TimeoutError:
            return f"no answer in {self.bound:.0f} s", time.perf_counter() - started
        except httpx.TransportError as error:
            return f"connection broken ({type(error).__name__})", time.perf_counter() - started
        code = response.headers.get("content-type", "").endswith("json") and response.json().get("code")
        retry = response.headers.get("retry-after")
        answer = (
            f"{response.status_code}"
            + (f" {code}" if code else "")
            + (f" Retry-After {retry}" if retry else "")
        )
        return answer, time.perf_counter() - started

    # --- the service ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def service(self) -> AsyncIterator[None]:
        name = f"bench_hostile_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(self.base.set(drivername="postgresql").render_as_string(False))
        await admin.execute(f'CREATE DATABASE "{name}"')
        self.direct = self.base.set(database=name)
        self.proxy = Proxy((self.base.host or "127.0.0.1", self.base.port or 5432))
        await self.proxy.start()
        fake_port = free_port()
        fake = uvicorn.Server(
            uvicorn.Config(shopify_app(self.fake), host="127.0.0.1", port=fake_port, log_level="warning")
        )
        fake_task = asyncio.create_task(fake.serve())
        env = {
            **os.environ,
            "PYTHONPATH": str(self.tree),
            "LOG_LEVEL": "ERROR",
            "LOG_FORMAT": "json",
            "CHANNEL_SHOPIFY_CA_ADMIN_URL": f"http://127.0.0.1:{fake_port}/admin/api/2026-10/graphql.json",
            "CHANNEL_SHOPIFY_CA_ACCESS_TOKEN": TOKEN,
            "CHANNEL_SHOPIFY_CA_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        }
        processes = []
        try:
            issued = subprocess.run(
                [sys.executable, "-m", "app", "keys", "create", "--name", "bench", *SCOPES],
                cwd=self.tree,
                env={**env, "DATABASE_URL": self.direct.render_as_string(False)},
                capture_output=True,
                text=True,
            )
            if issued.returncode != 0:
                raise RuntimeError(f"keys create failed: {issued.stderr[-2000:]}")
            key = issued.stdout.strip().splitlines()[-1]
            self.headers = {"Authorization": f"Bearer {key}"}
            self.ports = [free_port(), free_port()]
            for port, url in zip(
                self.ports, (self.direct.set(port=self.proxy.port), self.direct), strict=True
            ):
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "app", "serve", "--port", str(port)],
                        cwd=self.tree,
                        env={**env, "DATABASE_URL": url.render_as_string(False)},
                        stderr=None if self.server_log else subprocess.DEVNULL,
                    )
                )
            self.processes = processes
            for port in self.ports:
                await self.ready(port)
            yield
        finally:
            for process in processes:
                process.kill()
                process.wait()
            fake.should_exit = True
            await fake_task
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()

    async def ready(self, port: int) -> None:
        async with httpx.AsyncClient(timeout=1.0) as http:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError("serve did not start")

    def client(self, replica: int = 0) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.ports[replica]}",
            headers=self.headers,
            timeout=None,
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=500),
        )

    async def decide(self, http: httpx.AsyncClient, order_ref: str, **body: Any) -> str:
        response = await http.post("/v1/returns/route", json={"order_ref": order_ref, "as_of": AS_OF, **body})
        response.raise_for_status()
        return str(response.json()["decision_id"])

    def act(
        self, http: httpx.AsyncClient, decision: str, kind: str, **body: Any
    ) -> Awaitable[httpx.Response]:
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        return http.post(f"/v1/decisions/{decision}/actions/{kind}", json=body, headers=headers)

    def moved(self) -> str:
        return f"{len(self.fake.credits)} credits, {len(self.fake.refunds)} refunds"

    # --- the attacks ------------------------------------------------------------------------

    async def money(self) -> None:
        async with self.client(0) as a, self.client(1) as b:
            toque = [{"sku": "TOQ-MER-GRY"}]
            decisions = [await self.decide(a, "#1001", items=toque, ticket_id=f"T-{n}") for n in range(3)]
            answers = []
            started = time.perf_counter()
            for decision, kind in zip(decisions, ("store-credit", "store-credit", "refund"), strict=True):
                answers.append((await self.timed(self.act(a, decision, kind)))[0])
            self.row(
                "1. same return x3: credit, credit, refund (in turn)",
                f"{' / '.join(answers)}; {self.moved()}",
                time.perf_counter() - started,
            )

            before = len(self.fake.credits) + len(self.fake.refunds)
            mittens = [{"sku": "MIT-SHP-M"}]
            decisions = [await self.decide(a, "#1001", items=mittens, ticket_id=f"M-{n}") for n in range(3)]
            self.fake.latency = 0.02
            started = time.perf_counter()
            results = await asyncio.gather(
                self.timed(self.act(a, decisions[0], "store-credit")),
                self.timed(self.act(b, decisions[1], "store-credit")),
                self.timed(self.act(b, decisions[2], "refund")),
            )
            self.fake.latency = 0.0
            moved = len(self.fake.credits) + len(self.fake.refunds) - before
            self.row(
                "1. same, at once on two replicas",
                f"{' / '.join(r[0] for r in results)}; {moved} moved",
                time.perf_counter() - started,
            )

            decision = await self.decide(a, "#1003")
            self.fake.refund_by_hand(ORDER_1003, [("gid://shopify/LineItem/1071823190", 1)], "45.20")
            refunds = len(self.fake.refunds)
            answer, took = await self.timed(self.act(a, decision, "refund"))
            self.row(
                "1. refund a unit refunded by hand in Shopify (no webhook)",
                f"{answer}; {len(self.fake.refunds) - refunds} more refunds",
                took,
            )

    async def bad_input(self) -> None:
        async with self.client(0) as http:
            route = "/v1/returns/route"
            body = {"order_ref": "113-4567890-1234567", "as_of": AS_OF}
            for label, extra in (
                ("4. as_of 0001-01-01T00:00:00Z", {"as_of": "0001-01-01T00:00:00Z"}),
                (
                    "4. customer_contacted_at 9999-12-31T23:59:59Z",
                    {"customer_contacted_at": "9999-12-31T23:59:59Z"},
                ),
                ("4. ticket_id with a NUL", {"ticket_id": "T-1\u0000"}),
            ):
                self.row(label, *await self.timed(http.post(route, json={**body, **extra})))
            self.row(
                "4. query filter with a NUL", *await self.timed(http.get("/v1/decisions?ticket_id=T%00"))
            )
            decision = await self.decide(http, "#1005")
            self.row(
                "4. refund note with a NUL",
                *await self.timed(self.act(http, decision, "refund", note="a\u0000b")),
            )
            deep = b'{"deeper": ' * 499 + b"{}" + b"}" * 499
            signed, headers = delivery(
                json.dumps(return_request_payload()).encode()[:-1] + b', "x": ' + deep + b"}"
            )
            self.row(
                "4. signed webhook nested 500 deep",
                *await self.timed(http.post("/webhooks/shopify", content=signed, headers=headers)),
            )
            signed, headers = delivery(return_request_payload(status="requested\u0000"))
            self.row(
                "4. signed webhook, NUL in a field it reads",
                *await self.timed(http.post("/webhooks/shopify", content=signed, headers=headers)),
            )
            errors = await self.count_500s(http)
            for _ in range(20):
                _reader, writer = await asyncio.open_connection("127.0.0.1", self.ports[0])
                writer.write(
                    b"POST /v1/returns/route HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                    + f"Authorization: {self.headers['Authorization']}\r\n".encode()
                    + b"Content-Length: 500\r\n\r\n"
                    + b'{"order'
                )
                await writer.drain()
                writer.transport.abort()
            await asyncio.sleep(1)
            self.row(
                "4. 20 clients leave mid-body: new 500s in /metrics",
                str(await self.count_500s(http) - errors),
                None,
            )

    async def count_500s(self, http: httpx.AsyncClient) -> int:
        text = (await http.get("/metrics")).text
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("returns_router_http_requests_total") and 'status="500"' in line
        )

    async def webhooks(self) -> None:
        async with self.client(0) as http:
            payload = return_request_payload(return_id=77_001)
            payload["buyer_feedback"] = {"text": "Call me at 555-0100"}
            signed, headers = delivery(payload, triggered_at="2020-01-06T09:00:00Z")
            await http.post("/webhooks/shopify", content=signed, headers=headers)
            connection = await asyncpg.connect(
                self.direct.set(drivername="postgresql").render_as_string(False)
            )
            occurred, kept = await connection.fetchrow(
                "SELECT occurred_at, payload::text FROM webhook_events WHERE id = $1",
                headers["X-Shopify-Webhook-Id"],
            )
            await connection.close()
            self.row(
                "5. webhook with X-Shopify-Triggered-At 2020-01-06", f"event dated {occurred:%Y-%m-%d}", None
            )
            self.row(
                "5. webhook with a field Shopify might add",
                "stored" if "555-0100" in (kept or "") else "not stored",
                None,
            )

            _reader, writer = await asyncio.open_connection("127.0.0.1", self.ports[0])
            started = time.perf_counter()
            writer.write(
                b"POST /webhooks/shopify HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000000\r\n\r\n{"
            )
            await writer.drain()
            try:
                async with asyncio.timeout(10):
                    status = (await _reader.readline()).decode().strip() or "closed"
            except TimeoutError:
                status = "no answer in 10 s: the body is awaited"
            writer.transport.abort()
            self.row("5. unsigned 1 MB webhook body, sent slowly", status, time.perf_counter() - started)

    async def slow_connections(self) -> None:
        process = self.processes[0]
        before = rss_kib(process.pid)

        async def slow() -> bool:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.ports[0])
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
            closed = False
            for _ in range(40):  # 20 s, a header line every half second
                with contextlib.suppress(ConnectionError):
                    writer.write(b"X-Slow: " + b"s" * 2000 + b"\r\n")
                    await writer.drain()
                with contextlib.suppress(TimeoutError, ConnectionError):
                    if await asyncio.wait_for(reader.read(1 << 16), 0.5) == b"":
                        closed = True
                        break
            writer.transport.abort()
            return closed

        started = time.perf_counter()
        task = asyncio.gather(*(slow() for _ in range(SLOW_CLIENTS)))
        await asyncio.sleep(15)
        peak = rss_kib(process.pid)
        closed = await task
        async with self.client(0) as http:
            health = (await http.get("/healthz")).status_code
        self.row(
            f"7. {SLOW_CLIENTS} clients trickling headers for 20 s",
            f"{sum(closed)} closed by the server; RSS +{(peak - before) / 1024:.0f} MiB at 15 s; "
            f"healthz {health}",
            time.perf_counter() - started,
        )

    async def database(self) -> None:
        async with self.client(0) as http:
            await http.get("/v1/decisions")  # the key is known: authentication needs no query
            self.proxy.black_hole = True
            signed, headers = delivery(return_request_payload(return_id=88_001))
            for label, call in (
                (
                    "3. database silent: POST /v1/returns/route",
                    lambda: http.post("/v1/returns/route", json={"order_ref": "113-4567890-1234567"}),
                ),
                ("3. database silent: GET /v1/decisions", lambda: http.get("/v1/decisions")),
                (
                    "3. database silent: webhook acknowledgement",
                    lambda: http.post("/webhooks/shopify", content=signed, headers=headers),
                ),
                ("3. database silent: GET /readyz", lambda: http.get("/readyz")),
            ):
                self.row(label, *await self.timed(call()))
            self.proxy.black_hole = False
            started = time.perf_counter()
            answer = "no answer"
            while time.perf_counter() - started < self.bound:
                answer, _took = await self.timed(http.get("/readyz"))
                if answer == "200":
                    break
                await asyncio.sleep(0.5)
            self.row("3. database back: first /readyz 200 after", answer, time.perf_counter() - started)

            locker = await asyncpg.connect(self.direct.set(drivername="postgresql").render_as_string(False))
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
            started = time.perf_counter()
            try:
                results = await asyncio.gather(*(self.timed(http.get("/v1/decisions")) for _ in range(300)))
            finally:
                await transaction.rollback()
                await locker.close()
            counts = Counter(answer.split(" Retry")[0] for answer, _ in results)
            times = sorted(t for _, t in results)
            self.row(
                "3. 300 list calls, pool exhausted (slowest)",
                ", ".join(f"{n}x {a}" for a, n in counts.most_common()) + f"; median {times[150]:.2f} s",
                times[-1],
            )


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose `serve` is attacked")
    parser.add_argument("--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--bound", type=float, default=45.0, help="seconds to wait for any one answer")
    parser.add_argument(
        "--only",
        action="append",
        choices=["money", "input", "webhooks", "slow", "database"],
        help="these only",
    )
    parser.add_argument("--server-log", action="store_true", help="show the replicas' standard error")
    args = parser.parse_args()
    bench = Bench(args.tree.resolve(), args.database_url, min(args.bound, 120.0))
    bench.server_log = args.server_log
    phases = {
        "money": bench.money,
        "input": bench.bad_input,
        "webhooks": bench.webhooks,
        "slow": bench.slow_connections,
        "database": bench.database,
    }
    async with bench.service():
        for name in args.only or list(phases):
            await phases[name]()


if __name__ == "__main__":
    asyncio.run(main())
