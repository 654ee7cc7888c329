"""Prometheus metrics: what operators watch, and the calls that record it.

Labels hold only fixed vocabularies (route templates, channel keys, queue names, error codes),
never ids, order references or anything a buyer wrote. With several uvicorn workers, `serve` sets
PROMETHEUS_MULTIPROC_DIR so that `GET /metrics` adds up every worker (prometheus-client's
multiprocess mode); the directory must be empty when the service starts.
"""

from __future__ import annotations

import os
from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "returns_router_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "returns_router_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
DECISIONS = Counter(
    "returns_router_decisions_total", "Decisions stored.", ["channel", "classification", "queue"]
)
UPSTREAM_CALLS = Counter(
    "returns_router_upstream_calls_total", "Calls to a channel's API, by outcome.", ["upstream", "outcome"]
)
UPSTREAM_LATENCY = Histogram(
    "returns_router_upstream_call_duration_seconds",
    "Time of one call to a channel's API.",
    ["upstream"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_RETRIES = Counter(
    "returns_router_upstream_retries_total", "Retries of a call to a channel's API.", ["upstream", "code"]
)
UPSTREAM_THROTTLED = Counter(
    "returns_router_upstream_throttled_total",
    "Calls to a channel's API that the service's own rate limit made wait, or refused (503).",
    ["upstream", "action"],
)
WEBHOOK_INBOX_DEPTH = Gauge(
    "returns_router_webhook_inbox_depth",
    "Stored webhook events not processed yet.",
    multiprocess_mode="mostrecent",
)
WEBHOOK_INBOX_AGE = Gauge(
    "returns_router_webhook_inbox_oldest_age_seconds",
    "Age of the oldest unprocessed webhook event.",
    multiprocess_mode="mostrecent",
)


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)


def record_decision(channel: str, classification: str, queue: str) -> None:
    DECISIONS.labels(channel, classification, queue).inc()


def record_upstream_call(upstream: str, outcome: str, seconds: float) -> None:
    """One call to `upstream` (e.g. `amazon_us.get_order`); `outcome` one of `calls.OUTCOMES`."""
    UPSTREAM_CALLS.labels(upstream, outcome).inc()
    UPSTREAM_LATENCY.labels(upstream).observe(seconds)


def record_retry(upstream: str, code: str) -> None:
    UPSTREAM_RETRIES.labels(upstream, code).inc()


def record_throttle(upstream: str, action: Literal["waited", "refused"]) -> None:
    UPSTREAM_THROTTLED.labels(upstream, action).inc()


def record_webhook_inbox(depth: int, oldest_age_seconds: float) -> None:
    WEBHOOK_INBOX_DEPTH.set(depth)
    WEBHOOK_INBOX_AGE.set(oldest_age_seconds)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, and their content type."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# --- The Amazon order mirror -----------------------------------------------------------------------

MIRROR_LOOKUPS = Counter(
    "returns_router_amazon_mirror_lookups_total",
    "Amazon order lookups by what the mirror answered: the order (`mirror`), or why getOrder was asked "
    "(`not_held`, `stale`, `too_old`, `unavailable`).",
    ["account", "answer"],
)
MIRROR_ORDERS = Gauge(
    "returns_router_amazon_mirror_orders",
    "Orders the mirror holds, and of those the ones a notification made stale.",
    ["account", "state"],
    multiprocess_mode="mostrecent",
)
MIRROR_LAST_SYNC = Gauge(
    "returns_router_amazon_mirror_last_sync_timestamp_seconds",
    "When the mirror's last searchOrders pass finished (Unix time).",
    ["account"],
    multiprocess_mode="mostrecent",
)
MIRROR_LAG = Gauge(
    "returns_router_amazon_mirror_lag_seconds",
    "How far behind Amazon the mirror is: now less the cutoff its last finished pass confirmed.",
    ["account"],
    multiprocess_mode="mostrecent",
)
MIRROR_ORDERS_SKIPPED = Counter(
    "returns_router_amazon_mirror_orders_skipped_total",
    "Orders in a searchOrders page the mirror could not hold (unreadable, or another marketplace).",
    ["account", "reason"],
)
NOTIFICATIONS = Counter(
    "returns_router_amazon_notifications_total",
    "ORDER_CHANGE messages read from Amazon SQS, by what became of them.",
    ["outcome"],
)
NOTIFICATION_RECEIVE_FAILURES = Counter(
    "returns_router_amazon_notification_receive_failures_total",
    "Long polls of an ORDER_CHANGE queue that failed (Amazon SQS unreachable or refusing).",
)


def record_mirror_lookup(account: str, answer: str) -> None:
    MIRROR_LOOKUPS.labels(account, answer).inc()


def record_mirror(
    account: str, held: int, stale: int, last_sync_at: float | None, lag_seconds: float | None
) -> None:
    MIRROR_ORDERS.labels(account, "held").set(held)
    MIRROR_ORDERS.labels(account, "stale").set(stale)
    MIRROR_LAST_SYNC.labels(account).set(last_sync_at if last_sync_at is not None else float("nan"))
    MIRROR_LAG.labels(account).set(lag_seconds if lag_seconds is not None else float("nan"))


def record_mirror_skip(account: str, reason: str) -> None:
    MIRROR_ORDERS_SKIPPED.labels(account, reason).inc()


def record_notification(outcome: str) -> None:
    NOTIFICATIONS.labels(outcome).inc()


def record_notification_receive_failure() -> None:
    NOTIFICATION_RECEIVE_FAILURES.inc()
