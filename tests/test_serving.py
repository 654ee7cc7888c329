"""`python -m app serve` against slow and greedy clients, on 127.0.0.1: hundreds of connections that
never finish their request's head or body are answered and closed, connections beyond the limit are
closed as they open, and the server's memory stays bounded (its RSS, read from /proc)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SLOW_CLIENTS = 400
# Far beyond the limits the service is given here (a second or two): past it, the test has hung.
HANG = 60.0


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@contextlib.contextmanager
def serving(database_url: str, **limits: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json", **limits}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60  # a busy machine starts it slowly
        while True:
            assert process.poll() is None, "serve exited at start-up"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def slow_client(port: int, head: bytes, trickle: bytes, every: float) -> bytes:
    """Send `head`, then `trickle` every `every` seconds, until the server answers; its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        answer = asyncio.ensure_future(reader.read())  # until the server closes
        while not answer.done():
            with contextlib.suppress(ConnectionError):
                writer.write(trickle)
                await writer.drain()
            await asyncio.wait([answer], timeout=every)
        try:
            return answer.result()
        except ConnectionResetError:
            return b"reset"  # closed while the client was still sending: its answer may be lost
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def a_round(port: int, head: bytes, trickle: bytes, every: float) -> list[bytes]:
    async with asyncio.timeout(HANG):
        return await asyncio.gather(*(slow_client(port, head, trickle, every) for _ in range(SLOW_CLIENTS)))


async def healthy(port: int) -> bool:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as http:
        return (await http.get("/healthz")).status_code == 200


@pytest.fixture
def service(database_url: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    limits = {
        "SERVE_HEADER_TIMEOUT_SECONDS": "1",
        "BODY_TIMEOUT_SECONDS": "1",
        "SERVE_MAX_HEADER_BYTES": "65536",
    }
    with serving(database_url, **limits) as running:
        yield running


async def test_slow_heads_and_bodies_are_answered_and_closed_and_memory_stays_bounded(
    service: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, process = service
    before = rss_kib(process.pid)

    # Heads that never end: a header line now and then, or a flood of them (each write alone beyond
    # the 64 KiB limit, so the answer is 431 however late the header timeout is reached).
    dribbled = await a_round(port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n", b"X-Slow: 1\r\n", 0.2)
    flooded = await a_round(
        port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n", (b"X-Big: " + b"b" * 8000 + b"\r\n") * 9, 0.02
    )
    # Bodies that never end, under a signature that would be checked once they had.
    body_head = (
        b"POST /webhooks/shopify HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        b"X-Shopify-Hmac-Sha256: bm90IHRoZSBzaWduYXR1cmUgb2YgdGhpcyBib2R5IQ==\r\n"
        b"Content-Length: 900000\r\n\r\n{"
    )
    trickled = await a_round(port, body_head, b" " * 1000, 0.05)
    after = rss_kib(process.pid)

    assert {answer.split(b"\r\n", 1)[0] for answer in dribbled} == {b"HTTP/1.1 408 Request Timeout"}
    assert {answer.split(b"\r\n", 1)[0] for answer in flooded} == {
        b"HTTP/1.1 431 Request Header Fields Too Large"
    }
    # The application answers a late body, then uvicorn closes the connection with its rest unread.
    assert {answer.split(b"\r\n", 1)[0] for answer in trickled} <= {b"HTTP/1.1 408 Request Timeout", b"reset"}
    assert all(b'"code":"request_timeout"' in answer for answer in trickled if answer != b"reset")
    # 1,200 slow clients: what they held was given back (the allocator may keep some pages).
    assert after - before < 64 * 1024, f"RSS grew from {before} to {after} KiB"
    assert await healthy(port)


async def test_connections_beyond_the_limit_are_closed_as_they_open(database_url: str) -> None:
    limits = {"SERVE_LIMIT_CONCURRENCY": "100", "SERVE_HEADER_TIMEOUT_SECONDS": "30"}
    with serving(database_url, **limits) as (port, _process):
        connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(150)]
        closed = 0
        for reader, _writer in connections:
            with contextlib.suppress(TimeoutError, ConnectionError):
                if await asyncio.wait_for(reader.read(), 0.05) == b"":
                    closed += 1
        for _reader, writer in connections:
            writer.close()

    assert closed >= 50  # the ones beyond the limit, closed without a byte read
    assert 150 - closed <= 100  # never more held open than the limit
