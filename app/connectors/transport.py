"""The outbound transport: httpx's API on aiohttp's connections, failing with httpx's exceptions.

Connectors tell a timeout (504) from an unreachable upstream (503) by httpx's exception classes
alone (see `transport_error`). httpx-aiohttp 0.2 maps every aiohttp connection error it has no
closer match for to `httpx.ConnectTimeout`, so a refused connection or a server hanging up would
read as a timeout, and lets errors it does not know (a malformed status line) escape as aiohttp's
own, which no connector catches. This transport names each failure as httpx's own transport would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import httpx
import httpx_aiohttp

# Most specific first: several of these subclass the later ones.
_AS_HTTPX: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (asyncio.TimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientConnectionError, httpx.ReadError),
    (aiohttp.ClientError, httpx.TransportError),
)


_FAILURES = (httpx.TransportError, aiohttp.ClientError, asyncio.TimeoutError)


def as_httpx_error(error: BaseException, request: httpx.Request) -> BaseException:
    """The httpx exception for an aiohttp failure (or httpx-aiohttp's rendering of one), else `error`."""
    for aiohttp_error, httpx_error in _AS_HTTPX:
        if isinstance(error, aiohttp_error):
            mapped = httpx_error(f"{type(error).__name__}: {error}", request=request)
            mapped.__cause__ = error
            return mapped
    return error


def _aiohttp_failure(error: BaseException) -> BaseException:
    """What aiohttp raised, under httpx-aiohttp's mapping of it."""
    if isinstance(error, httpx.TransportError) and error.__cause__ is not None:
        return error.__cause__
    return error


class AiohttpTransport(httpx_aiohttp.AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except _FAILURES as error:
            mapped = as_httpx_error(_aiohttp_failure(error), request)
            raise mapped from mapped.__cause__
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            # The body arrives later, and can fail on its way (a reset, a stall) just as well.
            stream=_BodyStream(response.stream, request),
            request=request,
            extensions=response.extensions,
        )


class _BodyStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream | httpx.SyncByteStream, request: httpx.Request) -> None:
        assert isinstance(stream, httpx.AsyncByteStream)
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except _FAILURES as error:
            mapped = as_httpx_error(_aiohttp_failure(error), self._request)
            raise mapped from mapped.__cause__

    async def aclose(self) -> None:
        await self._stream.aclose()
