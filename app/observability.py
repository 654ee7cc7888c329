"""Structured logs (structlog, JSON in production) with a request id on every line, and one access
line and one set of metrics per request."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import TextIO

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._\-]{1,64}$")


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    json_logs = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        # Not cached: a logger must follow a later configure_logging() (another app, the tests).
        cache_logger_on_first_use=False,
    )
    # Except the access line's, bound again here: it is written for every request, and a lazy logger
    # binds itself anew on each call (5 of the line's 14 µs).
    global _access_log
    _access_log = structlog.get_logger("access").bind()


_access_log: structlog.typing.FilteringBoundLogger = structlog.get_logger("access")
REQUEST_ID_STATE = "request_id"


def request_id_of(scope: Scope) -> str | None:
    """The id RequestTelemetry gave the request, where its own context no longer reaches."""
    request_id: str | None = scope.get("state", {}).get(REQUEST_ID_STATE)
    return request_id


CLIENT_CLOSED_REQUEST = 499


class RequestTelemetry:
    """Per request: its id on every log line and in the answer (`X-Request-ID`, taken from the request
    when it is sane), one access log line, and the request metrics, labelled by route template.

    The template (`/v1/decisions/{decision_id}`), never the path: paths and query strings carry
    ids and filters, and would give the metrics one series per decision. One middleware for all of
    it: each layer of ASGI middleware costs every request a coroutine and a wrapper of `send`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"")
        request_id = given if _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex.encode()
        # For the answer to an exception nothing handled, sent by Starlette's outermost handler,
        # outside this middleware (see `request_id_of`).
        scope.setdefault("state", {})[REQUEST_ID_STATE] = request_id.decode()
        status: int | None = None
        gone = False

        async def receive_noting_disconnect() -> Message:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id.decode()):
            try:
                await self.app(scope, receive_noting_disconnect, send_with_id)
            finally:
                if status is None:
                    # Unanswered: the client left first (nginx's 499, not the service's error), or
                    # the application raised, which the client gets as a 500.
                    status = CLIENT_CLOSED_REQUEST if gone else 500
                seconds = time.perf_counter() - started
                route = scope.get("route")
                template = getattr(route, "path", None) or "unrouted"
                method = scope["method"]
                metrics.record_request(method, template, status, seconds)
                _access_log.info(
                    "request",
                    method=method,
                    route=template,
                    status=status,
                    duration_ms=round(seconds * 1000, 2),
                )
