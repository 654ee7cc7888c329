"""The shared HTTP client: aiohttp's connections behind httpx's API, errors still httpx's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from app.runtime import open_http_client
from app.settings import Settings


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    """A stand-in channel on 127.0.0.1: `/slow` answers nothing until it stops, anything else JSON."""
    closing = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        if b"/slow" in request_line:
            await closing.wait()
            writer.close()
            return
        body = b'{"ok": true}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    closing.set()
    server.close()


async def test_the_default_transport_is_aiohttp_and_speaks_httpx(upstream: str) -> None:
    async with open_http_client(Settings(_env_file=None)) as client:  # type: ignore[call-arg]
        assert isinstance(client._transport, AiohttpTransport)
        response = await client.get(f"{upstream}/orders/1")
        assert (response.status_code, response.json()) == (200, {"ok": True})
        with pytest.raises(httpx.TimeoutException):
            await client.get(f"{upstream}/slow", timeout=httpx.Timeout(0.2))


async def test_httpx_transport_on_request(upstream: str) -> None:
    async with open_http_client(Settings(_env_file=None, http_transport="httpx")) as client:  # type: ignore[call-arg]
        assert isinstance(client._transport, httpx.AsyncHTTPTransport)
        assert (await client.get(f"{upstream}/orders/1")).json() == {"ok": True}
