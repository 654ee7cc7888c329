"""What the service accepts at the door: JSON bodies only, none larger than a limit, and each query
parameter of the API once; no NUL character in either.

The limit counts the bytes that arrive, whatever `Content-Length` claims (it may be absent, with
chunked encoding, or false). A body is read whole before the application sees it, which every JSON
endpoint does anyway; an oversized one is refused as soon as it crosses the limit. PostgreSQL's text and
JSON hold no NUL: a body carrying one (`\u0000`) is refused with 422 before it reaches a column, rather
than failing there as a 500.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BodyTooLarge, ProblemError, UnsupportedMediaType, ValidationProblem
from app.problems import render

METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# `\u0000` escaped by an odd run of backslashes: `\\u0000` is a backslash and the text "u0000".
_NUL_IN_JSON = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def is_json(content_type: bytes) -> bool:
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        larger: Mapping[str, int] | None = None,
        verbatim: Collection[str] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Paths that take bigger bodies than the API's requests: Shopify's webhooks carry whole
        # refunds and returns, and must not be refused for their size.
        self.larger = dict(larger or {})
        # Paths whose bodies are taken as sent, NUL or not: a Shopify delivery refused would be lost,
        # and its free-text fields, where a NUL could be, are never stored.
        self.verbatim = frozenset(verbatim)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith("/v1/"):
            refused = _query_problem(scope["query_string"])
            if refused is not None:
                await render(refused)(scope, receive, send)
                return
        if scope["method"] not in METHODS_WITH_BODY:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        limit = self.larger.get(scope["path"], self.max_body_bytes)
        try:
            declared = headers.get(b"content-length", b"")
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(limit)
            body = await self._read_body(receive, limit)
            # No body at all is left to the route, which says which fields it needs.
            if body and not is_json(headers.get(b"content-type", b"")):
                raise UnsupportedMediaType("Send the body as JSON, with `Content-Type: application/json`.")
            if body and scope["path"] not in self.verbatim and _NUL_IN_JSON.search(body):
                raise ValidationProblem(
                    "The body holds a NUL character (\\u0000); no text the service keeps may hold one.",
                    errors=[{"loc": ["body"], "msg": "NUL character", "type": "nul_character"}],
                )
        except ProblemError as problem:
            await render(problem)(scope, receive, send)
            return
        if body is not None:
            await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive, limit: int) -> bytes | None:
        """The whole body, or None when the client went away before sending it."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _query_problem(query_string: bytes) -> ValidationProblem | None:
    # No text the service stores or filters by holds a NUL character (PostgreSQL refuses one).
    if b"%00" in query_string:
        return ValidationProblem(
            "A query parameter holds a NUL character (%00); no value of this API contains one.",
            errors=[{"loc": ["query"], "msg": "NUL character", "type": "nul_character"}],
        )
    repeated = _repeated_parameters(query_string)
    return _repeated(repeated) if repeated else None


def _repeated_parameters(query_string: bytes) -> list[str]:
    """Query parameters given more than once. Every parameter of the API takes one value: a second
    one is refused rather than silently winning over the first."""
    if b"&" not in query_string:
        return []
    counts = Counter(name for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    return sorted(name for name, count in counts.items() if count > 1)


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
