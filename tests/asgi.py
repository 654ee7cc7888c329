"""Requests handed to the app as raw ASGI messages: what a lenient server might pass on, or a client
that leaves mid-body, which an HTTP client would not send."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp

Message = dict[str, Any]


def raw_scope(path: str, headers: Iterable[tuple[bytes, bytes]], method: str = "POST") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 1),
        "server": ("router.test", 80),
        "state": {},
    }


async def send_raw(app: ASGIApp, scope: dict[str, Any], messages: Iterable[Message]) -> list[Message]:
    """The messages the app sent back, given `messages` as the client's (then a disconnect)."""
    pending = iter(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return next(pending, {"type": "http.disconnect"})

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent
