"""The aiohttp transport fails with the httpx exceptions httpx's own transport raises, so that
`transport_error` tells a timeout (504) from an unreachable upstream (503) on either."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from app.connectors.base import transport_error
from app.connectors.transport import AiohttpTransport
from app.errors import UpstreamTimeout, UpstreamUnavailable
from tests.connectors.faulty_amazon import FaultyAmazon, Reply, hang_up, reset_mid_body, silence

ORDER_PATH = "/orders/2026-01-01/orders/113-4567890-1234567"
TIMEOUT = httpx.Timeout(0.5)


def garbage() -> Reply:
    async def reply(writer: asyncio.StreamWriter, closing: asyncio.Event) -> bool:
        writer.write(b"NOT-HTTP at all\r\n\r\n")
        await writer.drain()
        return False

    return reply


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        yield client


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_connection_is_a_connect_error_not_a_timeout(http: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ConnectError) as raised:
        await http.get(f"http://127.0.0.1:{closed_port()}/", timeout=TIMEOUT)
    assert isinstance(transport_error(raised.value, "Amazon"), UpstreamUnavailable)
    assert not isinstance(transport_error(raised.value, "Amazon"), UpstreamTimeout)


@pytest.mark.parametrize(
    ("reply", "expected", "problem"),
    [
        (hang_up, httpx.RemoteProtocolError, UpstreamUnavailable),
        (garbage, httpx.RemoteProtocolError, UpstreamUnavailable),
        (lambda: reset_mid_body({"order": {"orderId": "x" * 100}}), httpx.ReadError, UpstreamUnavailable),
        (silence, httpx.ReadTimeout, UpstreamTimeout),
    ],
    ids=["hang-up", "not-http", "reset-mid-body", "silence"],
)
async def test_each_failure_is_httpxs_own_exception(
    http: httpx.AsyncClient,
    reply: type[Reply],
    expected: type[httpx.TransportError],
    problem: type[Exception],
) -> None:
    async with FaultyAmazon({}) as standin:
        # Twice: aiohttp silently repeats a request once when a reused connection drops.
        standin.order_faults.extend([reply(), reply()])
        with pytest.raises(expected) as raised:
            await http.get(standin.url + ORDER_PATH, timeout=TIMEOUT)
    assert isinstance(raised.value.__cause__, Exception)  # aiohttp's own error, kept for the logs
    assert type(transport_error(raised.value, "Amazon")) is problem
