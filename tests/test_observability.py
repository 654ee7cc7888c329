"""Logs and metrics: a request id on every line, and no secret or buyer data in any line or label."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.runtime import Runtime
from app.services.api_keys import Scope
from tests.conftest import MakeKey, Metrics

ROUTE = "/v1/returns/route"

# What a helpdesk sends about a buyer. None of it may reach a log line or a metric.
BUYER = {
    "name": "Genevieve Tremblay-Okafor",
    "email": "genevieve.tremblay@example.com",
    "phone": "+1 514 555 0142",
    "street": "4417 Rue Saint-Denis",
    "postal": "H2J 2L1",
    "ticket": "T-553912-ZD",
}
MESSAGE = (
    f"Hi, this is {BUYER['name']} ({BUYER['email']}, {BUYER['phone']}). The kettle I had shipped to "
    f"{BUYER['street']}, Montreal QC {BUYER['postal']} arrived cracked. Card ending 4242."
)


async def test_no_secret_or_buyer_data_in_any_log_line_or_metric(
    client: httpx.AsyncClient, make_key: MakeKey, runtime: Runtime, log_lines: io.StringIO
) -> None:
    route_key = await make_key(Scope.route, name="helpdesk")
    secret = route_key["Authorization"].removeprefix("Bearer ")
    body: dict[str, Any] = {
        "order_ref": "113-4567890-1234567",
        "ticket_id": BUYER["ticket"],
        "customer_message": MESSAGE,
        "reason": "damaged",
        "as_of": "2026-12-03T15:00:00Z",
    }
    made = await client.post(ROUTE, json=body, headers=route_key)
    assert made.status_code == 201
    decision_id = made.json()["decision_id"]
    replay_headers = {**route_key, "Idempotency-Key": f"{BUYER['email']}-retry"}
    assert (await client.post(ROUTE, json=body, headers=replay_headers)).status_code == 201
    assert (await client.post(ROUTE, json=body, headers=replay_headers)).status_code == 201  # replayed
    # Refusals that carry the buyer's data in the places it can go wrong.
    await client.post(ROUTE, json={**body, "order_ref": BUYER["email"]}, headers=route_key)
    await client.post(ROUTE, json={**body, "surname": BUYER["name"]}, headers=route_key)
    await client.post(ROUTE, content=MESSAGE.encode(), headers={**route_key, "Content-Type": "text/plain"})
    await client.post(ROUTE, json=body, headers={"Authorization": f"Bearer {secret[:-3]}xyz"})
    await client.post(ROUTE, json=body, headers={"Authorization": f"Basic {BUYER['email']}"})
    await client.get(f"/v1/decisions/{decision_id}", headers=route_key)
    await client.get(f"/v1/decisions/{BUYER['phone']}", headers=route_key)
    await client.get(f"/v1/decisions?ticket_id={BUYER['ticket']}&email={BUYER['email']}", headers=route_key)
    exposition = (await client.get("/metrics")).text

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    access = [line for line in lines if line["event"] == "request"]
    assert len(access) == 12  # one per request
    assert all(line.get("request_id") for line in lines)
    assert {line["route"] for line in access} >= {"/v1/returns/route", "/v1/decisions/{decision_id}"}

    # Labels and names only: a sample's value (a latency sum) may hold any run of digits.
    labels = "\n".join(
        f"{sample.name} {' '.join(sample.labels.values())}"
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    )
    assert decision_id not in labels  # ids are not labels
    text = log_lines.getvalue() + labels
    forbidden = [secret, secret[-20:], *BUYER.values(), "4242", "Rue Saint-Denis", "cracked"]
    leaked = [value for value in forbidden if value.lower() in text.lower()]
    assert leaked == []


async def test_metrics_count_requests_by_route_template_and_decisions_by_channel(
    client: httpx.AsyncClient, make_key: MakeKey, metrics: Metrics
) -> None:
    def sample(exposition: str, name: str, **labels: str) -> float:
        for line in exposition.splitlines():
            if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    headers = await make_key(Scope.route, Scope.read)
    body = {"order_ref": "#1001", "as_of": "2026-11-20T15:00:00Z"}
    made = await client.post(ROUTE, json=body, headers=headers)
    assert made.status_code == 201
    await client.get(f"/v1/decisions/{made.json()['decision_id']}", headers=headers)
    await client.get("/v1/decisions/00000000-0000-4000-8000-000000000000", headers=headers)
    response = await client.get("/metrics")
    exposition = response.text

    assert response.headers["content-type"].startswith("text/plain")
    template = "/v1/decisions/{decision_id}"
    for name, labels, count in [
        ("returns_router_http_requests_total", {"route": ROUTE, "status": "201"}, 1),
        ("returns_router_http_requests_total", {"route": template, "status": "200"}, 1),
        ("returns_router_http_requests_total", {"route": template, "status": "404"}, 1),
        ("returns_router_http_request_duration_seconds_count", {"route": ROUTE, "method": "POST"}, 1),
        (
            "returns_router_decisions_total",
            {
                "channel": "shopify_ca",
                "classification": "retention_refund",
                "queue": made.json()["queue"]["name"],
            },
            1,
        ),
    ]:
        assert sample(exposition, name, **labels) == count, (name, labels)
    assert made.json()["decision_id"] not in exposition


def test_upstream_helpers_record_calls_retries_and_throttling(metrics: Metrics) -> None:
    from app import metrics as app_metrics

    app_metrics.record_upstream_call("shopify_ca.admin", "ok", 0.12)
    app_metrics.record_retry("shopify_ca.admin", "upstream_rate_limited")
    app_metrics.record_throttle("shopify_ca.admin", "refused")

    upstream = {"upstream": "shopify_ca.admin"}
    assert metrics.value("returns_router_upstream_calls_total", **upstream, outcome="ok") == 1
    assert metrics.value("returns_router_upstream_call_duration_seconds_sum", **upstream) == 0.12
    assert (
        metrics.value("returns_router_upstream_retries_total", **upstream, code="upstream_rate_limited") == 1
    )
    assert metrics.value("returns_router_upstream_throttled_total", **upstream, action="refused") == 1
