"""How `python -m app serve` runs uvicorn, with the limits a slow or greedy client must not get past.

uvicorn closes a keep-alive connection left idle (`timeout_keep_alive`) and answers 503 past
`limit_concurrency`, but waits for ever on a connection that never finishes its request line and
headers, and (with httptools) takes headers of any size. `GuardedHttpToolsProtocol` adds those
bounds: a request's head must arrive whole within `SERVE_HEADER_TIMEOUT_SECONDS` and within
`SERVE_MAX_HEADER_BYTES`, and connections beyond `SERVE_LIMIT_CONCURRENCY` are closed as they open.
A body's own deadline is the application's (`BODY_TIMEOUT_SECONDS`, see app.limits).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import Settings

# How long a refused connection's remaining bytes are read and dropped before it is closed.
LINGER_SECONDS = 1.0
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


@dataclass(frozen=True)
class ServeLimits:
    connections: int
    header_timeout: float
    header_bytes: int
    keep_alive: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ServeLimits:
        return cls(
            connections=settings.serve_limit_concurrency,
            header_timeout=settings.serve_header_timeout_seconds,
            header_bytes=settings.serve_max_header_bytes,
            keep_alive=settings.serve_keep_alive_seconds,
        )


@cache
def limits() -> ServeLimits:
    """This process's limits (each uvicorn worker reads the same settings)."""
    return ServeLimits.from_settings(Settings())


def uvicorn_options(serve: ServeLimits) -> dict[str, Any]:
    """What `uvicorn.run` takes besides the app: the protocol and uvicorn's own limits."""
    return {
        "http": GuardedHttpToolsProtocol,
        "limit_concurrency": serve.connections,
        "timeout_keep_alive": serve.keep_alive,
    }


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline and a size limit for each request's head and a
    limit on open connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits()
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.connections:
            transport.abort()  # over the limit: not a byte read, nothing held
            return
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered already: what still comes is read and dropped until the close
        super().data_received(data)
        if self._head_deadline is None or self.transport.is_closing():
            return
        # Still within a request's head: what it has sent so far counts against the limit.
        self._head_bytes += len(data)
        if self._head_bytes > self.limits.header_bytes:
            self._refuse(TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_deadline is None:  # the next request on a kept-alive connection
            self._await_head()

    def on_headers_complete(self) -> None:
        self._head_arrived()
        super().on_headers_complete()

    def _await_head(self) -> None:
        self._head_bytes = 0
        self._head_deadline = self.loop.call_later(self.limits.header_timeout, self._refuse, REQUEST_TIMEOUT)

    def _head_arrived(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _refuse(self, answer: bytes) -> None:
        """Answer, and close. Closing a socket with unread bytes resets it, which can destroy the
        answer before the client reads it: the rest is read and dropped for a moment first."""
        self._head_arrived()
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self.transport.write(answer)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
