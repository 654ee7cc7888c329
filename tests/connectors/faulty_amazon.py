"""An Amazon stand-in on a real socket that misbehaves on cue: Login with Amazon and getOrder on
127.0.0.1, answering from a script of faults before it answers normally again.

Raw asyncio streams rather than an HTTP server, because the faults live below HTTP: a connection
reset halfway through a body, a body that stops coming, an answer that never starts. It runs on the
test's own event loop, so it serves the whole app and either outbound transport alike.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import re
import socket
import struct
import termios
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

from tests.polling import poll_until

TOKEN_PATH = "/auth/o2/token"
_GET_ORDER = re.compile(r"^/orders/2026-01-01/orders/([^/?]+)")

# A reply writes (part of) an answer; the connection is closed after it unless it returns True.
# `closing` is set when the stand-in shuts down: a reply that stalls waits for it.
Reply = Callable[[asyncio.StreamWriter, asyncio.Event], Awaitable[bool]]


def _head(status: int, length: int, headers: Mapping[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(status: int, body: bytes | Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Reply:
    """A whole, well-framed HTTP answer (whatever the body holds)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def reply(writer: asyncio.StreamWriter, closing: asyncio.Event) -> bool:
        writer.write(_head(status, len(raw), headers) + raw)
        await writer.drain()
        return True

    return reply


def silence() -> Reply:
    """Reads the request and never answers."""

    async def reply(writer: asyncio.StreamWriter, closing: asyncio.Event) -> bool:
        await closing.wait()
        return False

    return reply


def hang_up() -> Reply:
    """Reads the request and closes the connection without a word."""

    async def reply(writer: asyncio.StreamWriter, closing: asyncio.Event) -> bool:
        return False

    return reply


def stalled_body(body: Mapping[str, Any]) -> Reply:
    """Headers and half the body, then nothing more."""
    raw = json.dumps(body).encode()

    async def reply(writer: asyncio.StreamWriter, closing: asyncio.Event) -> bool:
        writer.write(_head(200, len(raw)) + raw[: len(raw) // 2])
        await writer.drain()
        await closing.wait()
        return False

    return reply


def reset_mid_body(body: Mapping[str, Any]) -> Reply:
    """Headers and half the body, then a TCP reset (RST, not an orderly close)."""
    raw = json.dumps(body).encode()

    async def reply(writer: asyncio.StreamWriter, closing: asyncio.Event) -> bool:
        writer.write(_head(200, len(raw)) + raw[: len(raw) // 2])
        await writer.drain()
        sock = writer.get_extra_info("socket")

        async def acknowledged() -> bool:
            # Bytes the client's side has not acknowledged yet (Linux's SIOCOUTQ).
            unacknowledged = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4)
            return struct.unpack("i", unacknowledged)[0] == 0

        # The reset must not overtake the half body: it leaves only once the client has it all.
        await poll_until("the half body acknowledged", acknowledged, within=5, every=0.001)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return False

    return reply


class FaultyAmazon:
    """Serves `orders` by id and access tokens, after the scripted faults of each endpoint."""

    def __init__(self, orders: Mapping[str, Mapping[str, Any]], *, unanswered: bool = False) -> None:
        """`unanswered`: connections are not accepted (they time out) until `answer_again()`."""
        self.orders = dict(orders)
        self._unanswered = unanswered
        self._listener = socket.socket()
        self._fillers: list[socket.socket] = []
        self.token_faults: list[Reply] = []
        self.order_faults: list[Reply] = []
        self.token_calls = 0
        self.order_calls = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    async def __aenter__(self) -> FaultyAmazon:
        self._listener.bind(("127.0.0.1", 0))
        if not self._unanswered:
            await self.answer_again()
            return self
        # A full backlog: Linux queues backlog + 1 connections and drops further SYNs, so a
        # client's connect times out as with a dead host.
        self._listener.listen(0)
        for _ in range(2):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(self._listener.getsockname())
            self._fillers.append(filler)
        return self

    async def answer_again(self) -> None:
        for filler in self._fillers:
            filler.close()
        self._server = await asyncio.start_server(self._serve, sock=self._listener)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        if self._server is None:
            self._listener.close()
            return
        self._server.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up (a timeout on its side): nothing to answer
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        await reader.readexactly(int(headers.get("content-length") or 0))
        if method == "POST" and path == TOKEN_PATH:
            self.token_calls += 1
            faults, normal = self.token_faults, self._token()
        elif method == "GET" and (match := _GET_ORDER.match(path)):
            self.order_calls += 1
            faults, normal = self.order_faults, self._order(match.group(1))
        else:
            faults, normal = (
                [],
                answer(404, {"errors": [{"code": "NotFound", "message": "No such resource"}]}),
            )
        reply = faults.pop(0) if faults else normal
        return await reply(writer, self._closing)

    def _token(self) -> Reply:
        token = f"Atza|faulty-{self.token_calls}"
        return answer(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600})

    def _order(self, order_id: str) -> Reply:
        if order_id in self.orders:
            return answer(200, self.orders[order_id])
        return answer(404, {"errors": [{"code": "NotFound", "message": "Order not found"}]})
