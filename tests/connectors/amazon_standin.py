"""A local stand-in for Login with Amazon and SP-API getOrder, on 127.0.0.1 and a free port.

It serves `GetOrderResponse` bodies, may enforce a usage plan the way Amazon does (a token bucket;
429 `QuotaExceeded` when empty) and answer after a fixed latency, and records every call it got.
Used by the end-to-end tests, the two-process Redis test and `bench/amazon_lookups.py`.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.connectors.ratelimit import Limit

TOKEN_PATH = "/auth/o2/token"
_GET_ORDER = re.compile(r"^/orders/2026-01-01/orders/([^/]+)$")


class AmazonStandIn:
    def __init__(
        self,
        orders: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        template: Mapping[str, Any] | None = None,
        limit: Limit | None = None,
        latency: float = 0.0,
    ) -> None:
        """`orders` by id; any other well-formed id is answered from `template` when one is given."""
        self.orders = dict(orders or {})
        self.template = template
        self.limit = limit
        self.latency = latency
        self.calls: list[tuple[float, str]] = []  # (monotonic arrival time, order id), answered or not
        self.throttled = 0
        self.token_calls = 0
        self.queries: list[dict[str, list[str]]] = []
        self._lock = threading.Lock()
        self._tokens = float(limit.burst) if limit else 0.0
        self._counted_at = time.monotonic()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    def __enter__(self) -> AmazonStandIn:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def admit(self) -> bool:
        """Amazon's side of the usage plan: take a token, or refuse."""
        if self.limit is None:
            return True
        with self._lock:
            now = time.monotonic()
            self._tokens = min(
                float(self.limit.burst), self._tokens + (now - self._counted_at) * self.limit.rate
            )
            self._counted_at = now
            if self._tokens < 1:
                self.throttled += 1
                return False
            self._tokens -= 1
            return True

    def answer(self, order_id: str) -> Mapping[str, Any] | None:
        if order_id in self.orders:
            return self.orders[order_id]
        if self.template is not None and re.fullmatch(r"\d{3}-\d{7}-\d{7}", order_id):
            body = copy.deepcopy(dict(self.template))
            body["order"]["orderId"] = order_id
            return body
        return None


def _handler(standin: AmazonStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if urlsplit(self.path).path != TOKEN_PATH:
                self._send(404, {"error": "not_found"})
                return
            with standin._lock:
                standin.token_calls += 1
                n = standin.token_calls
            self._send(200, {"access_token": f"Atza|standin-{n}", "token_type": "bearer", "expires_in": 3600})

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            match = _GET_ORDER.match(parts.path)
            if match is None:
                self._send(404, {"errors": [{"code": "NotFound", "message": "No such resource"}]})
                return
            order_id = match.group(1)
            with standin._lock:
                standin.calls.append((time.monotonic(), order_id))
                standin.queries.append(parse_qs(parts.query))
            if not (self.headers.get("x-amz-access-token") or "").startswith("Atza|"):
                self._send(403, {"errors": [{"code": "Unauthorized", "message": "Access denied"}]})
                return
            if not standin.admit():
                self._send(429, {"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota"}]})
                return
            if standin.latency:
                time.sleep(standin.latency)
            body = standin.answer(order_id)
            if body is None:
                self._send(404, {"errors": [{"code": "NotFound", "message": "Order not found"}]})
                return
            self._send(200, body)

        def _send(self, status: int, body: Mapping[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature of the base
            return None  # quiet: the tests read `calls`

    return Handler
