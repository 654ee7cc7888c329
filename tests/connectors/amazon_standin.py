"""A local stand-in for Login with Amazon and SP-API getOrder and searchOrders, on 127.0.0.1 and a
free port.

It serves `GetOrderResponse` bodies, and pages of the same orders to searchOrders (createdAfter or
lastUpdatedAfter, up to `maxResultsPerPage`, a `nextToken` bound to its query, and a cutoff two
minutes before the call, as Amazon's). It may enforce each operation's usage plan the way Amazon does
(a token bucket per operation; 429 `QuotaExceeded` when empty), answer after a fixed latency, fail
chosen searchOrders calls, and records every call it got. Used by the end-to-end tests, the
two-process Redis test, the order mirror's tests and `bench/amazon_lookups.py`, `bench/order_mirror.py`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.connectors.ratelimit import Limit

TOKEN_PATH = "/auth/o2/token"
SEARCH_ORDERS_PATH = "/orders/2026-01-01/orders"
_GET_ORDER = re.compile(r"^/orders/2026-01-01/orders/([^/]+)$")
# Amazon's published plans (the Orders 2026-01-01 model).
GET_ORDER_LIMIT = Limit(rate=0.5, burst=30)
SEARCH_ORDERS_LIMIT = Limit(rate=0.0056, burst=20)
# searchOrders covers what was created or updated up to two minutes before the call.
SETTLING = timedelta(minutes=2)


class _Bucket:
    """Amazon's side of one operation's usage plan."""

    def __init__(self, limit: Limit | None) -> None:
        self.limit = limit
        self._tokens = float(limit.burst) if limit else 0.0
        self._counted_at = time.monotonic()

    def admit(self) -> bool:
        if self.limit is None:
            return True
        now = time.monotonic()
        self._tokens = min(float(self.limit.burst), self._tokens + (now - self._counted_at) * self.limit.rate)
        self._counted_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class AmazonStandIn:
    def __init__(
        self,
        orders: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        template: Mapping[str, Any] | None = None,
        limit: Limit | None = None,
        latency: float = 0.0,
        search_limit: Limit | None = None,
        settling: timedelta = SETTLING,
    ) -> None:
        """`orders` by id; any other well-formed id is answered from `template` when one is given
        (getOrder only: searchOrders pages `orders`). `limit` is getOrder's plan, `search_limit`
        searchOrders'."""
        self.orders = dict(orders or {})
        self.template = template
        self.limit = limit
        self.latency = latency
        self.settling = settling
        self.calls: list[tuple[float, str]] = []  # (monotonic arrival time, order id), answered or not
        self.throttled = 0
        self.token_calls = 0
        self.queries: list[dict[str, list[str]]] = []
        # searchOrders: every call's arrival and query, those refused for the plan, and statuses to
        # answer the next calls with instead of a page (a fault, once each).
        self.searches: list[tuple[float, dict[str, list[str]]]] = []
        self.search_throttled = 0
        self.search_faults: list[int] = []
        self._lock = threading.Lock()
        self._get_order_bucket = _Bucket(limit)
        self._search_bucket = _Bucket(search_limit)
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
        """Amazon's side of getOrder's usage plan: take a token, or refuse."""
        with self._lock:
            if self._get_order_bucket.admit():
                return True
            self.throttled += 1
            return False

    def change(self, order_id: str, edit: Callable[[dict[str, Any]], None]) -> datetime:
        """Change an order as Amazon would (its `lastUpdatedTime` becomes now); answers that time."""
        now = datetime.now(UTC)
        with self._lock:
            body = copy.deepcopy(dict(self.orders[order_id]))
            edit(body["order"])
            body["order"]["lastUpdatedTime"] = _iso(now)
            self.orders[order_id] = body
        return now

    def search(self, query: dict[str, list[str]]) -> tuple[int, Mapping[str, Any]]:
        """searchOrders: the status and body Amazon would answer `query` with."""
        with self._lock:
            self.searches.append((time.monotonic(), query))
            if self.search_faults:
                status = self.search_faults.pop(0)
                return status, {"errors": [{"code": "InternalFailure", "message": "Injected fault"}]}
            if not self._search_bucket.admit():
                self.search_throttled += 1
                return 429, {"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota"}]}
            orders = [body["order"] for body in self.orders.values()]
        return _page(query, orders, datetime.now(UTC) - self.settling)

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
            if parts.path == SEARCH_ORDERS_PATH:
                self._search(parse_qs(parts.query))
                return
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

        def _search(self, query: dict[str, list[str]]) -> None:
            if not (self.headers.get("x-amz-access-token") or "").startswith("Atza|"):
                self._send(403, {"errors": [{"code": "Unauthorized", "message": "Access denied"}]})
                return
            status, body = standin.search(query)
            if standin.latency:
                time.sleep(standin.latency)
            self._send(status, body)

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


def orders_like(
    template: Mapping[str, Any], count: int, *, now: datetime, days: int = 30, prefix: str = "113"
) -> dict[str, dict[str, Any]]:
    """`count` distinct orders made from one `GetOrderResponse`, created evenly over the last `days`
    days and last updated an hour after, each with an id of its own."""
    orders: dict[str, dict[str, Any]] = {}
    step = timedelta(days=days) / count
    for index in range(count):
        order_id = f"{prefix}-{index:07d}-0000001"
        created = now - timedelta(days=days) + step * (index + 0.5)
        body = copy.deepcopy(dict(template))
        body["order"]["orderId"] = order_id
        body["order"]["createdTime"] = _iso(created)
        body["order"]["lastUpdatedTime"] = _iso(min(created + timedelta(hours=1), now - 2 * SETTLING))
        orders[order_id] = body
    return orders


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _invalid(message: str) -> tuple[int, Mapping[str, Any]]:
    return 400, {"errors": [{"code": "InvalidInput", "message": message}]}


def _page(
    query: dict[str, list[str]], orders: list[Mapping[str, Any]], cutoff: datetime
) -> tuple[int, Mapping[str, Any]]:
    """One page of searchOrders as the model describes it, over `orders`."""
    one = {key: values[0] for key, values in query.items()}
    created_after, updated_after = one.get("createdAfter"), one.get("lastUpdatedAfter")
    if (created_after is None) == (updated_after is None):
        return _invalid("Exactly one of createdAfter and lastUpdatedAfter is required")
    size = int(one.get("maxResultsPerPage", "100"))
    if not 1 <= size <= 100:
        return _invalid("maxResultsPerPage must be between 1 and 100")
    if "BUYER" in one.get("includedData", "") or "RECIPIENT" in one.get("includedData", ""):
        return _invalid("the service must not ask for buyer data")  # the stand-in's own guard
    # A token is good for the query that made it, whatever maxResultsPerPage and includedData say.
    bound = {key: value for key, value in sorted(one.items()) if key in ("createdAfter", "lastUpdatedAfter")}
    fingerprint = hashlib.sha256(json.dumps(bound).encode()).hexdigest()[:16]
    offset, token_cutoff = 0, cutoff
    if "paginationToken" in one:
        try:
            token = json.loads(base64.urlsafe_b64decode(one["paginationToken"]))
        except ValueError:
            return _invalid("Invalid paginationToken")
        if token.get("query") != fingerprint:
            return _invalid("The paginationToken was issued for another query")
        offset, token_cutoff = int(token["offset"]), _when(token["cutoff"])
    if created_after is not None:
        key, since = "createdTime", _when(created_after)
    else:
        key, since = "lastUpdatedTime", _when(str(updated_after))
    matching = sorted(
        (order for order in orders if since <= _when(order[key]) <= token_cutoff),
        key=lambda order: (order[key], order["orderId"]),
    )
    page = matching[offset : offset + size]
    body: dict[str, Any] = {
        "orders": page,
        ("createdBefore" if created_after is not None else "lastUpdatedBefore"): _iso(token_cutoff),
    }
    if offset + size < len(matching):
        next_token = {"query": fingerprint, "offset": offset + size, "cutoff": _iso(token_cutoff)}
        body["pagination"] = {"nextToken": base64.urlsafe_b64encode(json.dumps(next_token).encode()).decode()}
    return 200, body
