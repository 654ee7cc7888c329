"""What the service accepts at the door: JSON bodies only, none larger than a limit, no NUL character
in any text, and each query parameter of the API once.

The limit counts the bytes that arrive, whatever `Content-Length` claims (it may be absent, with
chunked encoding, or false). A body is read whole before the application sees it, which every JSON
endpoint does anyway; an oversized one is refused as soon as it crosses the limit.

A body must arrive whole within a deadline (a client trickling it holds memory and a connection).
A body that can only be verified once it is read whole (a signed webhook) is not read at all without
its signature header, and such bodies in flight share one budget of bytes: past it, 503 `overloaded`.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import (
    BodyTooLarge,
    InvalidSignature,
    Overloaded,
    ProblemError,
    RequestTimeout,
    UnsupportedMediaType,
    ValidationProblem,
)
from app.problems import render

METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def is_json(content_type: bytes) -> bool:
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


# PostgreSQL's text cannot hold U+0000: a JSON string escape of it (`\u0000`, its backslash not
# itself escaped) is refused here, not left to fail in the database. Raw control characters are
# not valid JSON at all.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _holds_nul(body: bytes) -> bool:
    # The substring first: almost no body holds it, and the expression alone takes 11 µs on a
    # 400-byte request, half of what this middleware costs one.
    return b"\\u0000" in body and _NUL_ESCAPE.search(body) is not None


@dataclass(frozen=True)
class Unverified:
    """A path whose bodies are signed, so that they can only be verified once read whole."""

    signature_header: bytes
    budget_bytes: int  # every such body in flight at once, together


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        larger: Mapping[str, int] | None = None,
        unverified: Mapping[str, Unverified] | None = None,
        body_timeout: float = 10.0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        # Paths that take bigger bodies than the API's requests: Shopify's webhooks carry whole
        # refunds and returns, and must not be refused for their size.
        self.larger = dict(larger or {})
        self.unverified = dict(unverified or {})
        self._in_flight = dict.fromkeys(self.unverified, 0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        refused = _query_problem(scope["query_string"]) if path.startswith("/v1/") else None
        if refused is not None:
            await render(refused)(scope, receive, send)
            return
        if scope["method"] not in METHODS_WITH_BODY:
            await self.app(scope, receive, send)
            return
        try:
            body, held = await self._read_body(path, dict(scope["headers"]), receive)
        except ProblemError as problem:
            await render(problem)(scope, receive, send)
            return
        except ClientGone:
            return  # nothing to answer, and no one to answer it to
        try:
            await self.app(scope, _replay(body, receive), send)
        finally:
            self._give_back(path, held)

    async def _read_body(self, path: str, headers: dict[bytes, bytes], receive: Receive) -> tuple[bytes, int]:
        """The whole body, checked, and how many of its bytes count against its path's budget of
        unverified bytes (given back by the caller once the request is over)."""
        limit = self.larger.get(path, self.max_body_bytes)
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        signed = self.unverified.get(path)
        if signed is not None and not headers.get(signed.signature_header):
            raise InvalidSignature(f"{signed.signature_header.decode()} is missing; the body was not read.")
        chunks: list[bytes] = []
        held = 0
        try:
            async for chunk in _chunks(receive, limit, self.body_timeout):
                chunks.append(chunk)
                if signed is not None:
                    held += len(chunk)
                    self._in_flight[path] += len(chunk)
                    if self._in_flight[path] > signed.budget_bytes:
                        raise Overloaded(
                            "Too many signed bodies are being received at once; retry shortly.",
                            headers={"Retry-After": "5"},
                        )
            body = b"".join(chunks)
            # No body at all is left to the route, which says which fields it needs.
            if body and not is_json(headers.get(b"content-type", b"")):
                raise UnsupportedMediaType("Send the body as JSON, with `Content-Type: application/json`.")
            if signed is None and _holds_nul(body):
                raise _nul_in(["body"])
        except BaseException:
            self._give_back(path, held)
            raise
        return body, held

    def _give_back(self, path: str, held: int) -> None:
        if held:
            self._in_flight[path] -= held


class ClientGone(Exception):
    """The client went away before it sent the whole body."""


async def _chunks(receive: Receive, limit: int, timeout: float) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive; `ClientGone` when the client leaves before the last, and
    `RequestTimeout` when the last has not come `timeout` seconds after reading began."""
    size = 0
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise RequestTimeout(
                f"The body did not arrive within {timeout:g} seconds.", headers={"Connection": "close"}
            ) from None
        if message["type"] != "http.request":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        yield chunk
        if not message.get("more_body", False):
            return


def _query_problem(query_string: bytes) -> ProblemError | None:
    """Query parameters given more than once (every parameter of the API takes one value: a second
    one is refused rather than silently winning over the first), or holding a NUL character."""
    if not query_string:
        return None
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    counts = Counter(name for name, _ in pairs)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        return _repeated(repeated)
    with_nul = sorted({name for name, value in pairs if "\x00" in name or "\x00" in value})
    if with_nul:
        return _nul_in(*(["query", name.replace("\x00", "")] for name in with_nul))
    return None


def _nul_in(*locations: list[str]) -> ValidationProblem:
    return ValidationProblem(
        "Text may not contain the NUL character (U+0000, `\\u0000` in JSON, `%00` in a query); no text "
        "the service keeps may hold one.",
        errors=[{"loc": loc, "msg": "NUL character", "type": "nul_character"} for loc in locations],
    )


def _repeated(names: list[str]) -> ValidationProblem:
    listed = ", ".join(f"`{name}`" for name in names)
    return ValidationProblem(
        f"Give each query parameter once: {listed} came more than once.",
        errors=[
            {"loc": ["query", name], "msg": "given more than once", "type": "repeated"} for name in names
        ],
    )


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"The body is larger than {limit} bytes.")


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as one message; then whatever the server says next (a disconnect)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
