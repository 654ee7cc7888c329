"""Every answer stays what it was: a fixed set of requests, routed through the API (with and without an
Idempotency-Key) and through a `returns/request` webhook, compared field for field with the answers
recorded in `route_answers.json`.

`UPDATE_ROUTE_ANSWERS=1 pytest tests/services/test_route_answers.py` records them again, on purpose only:
a change of an answer is a change of the contract's behaviour.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.runtime import Runtime
from app.services.api_keys import Scope
from app.services.webhooks.worker import Worker
from tests.conftest import MakeKey
from tests.webhook_builders import delivery, return_request_payload

ANSWERS = Path(__file__).with_name("route_answers.json")
# What differs from one routing to the next by design: a new id and the moment it was stored.
VOLATILE = ("decision_id", "created_at")

AMAZON_ORDERS = (
    "113-4567890-1234567",
    "112-3344556-7788990",
    "114-2233445-5667788",
    "111-9988776-6554433",
    "115-6677889-9001122",
    "116-1122334-4556677",
)
SHOPIFY_ORDERS = ("#1001", "#1002", "1003", "gid://shopify/Order/450789472", "#1005", "#1006", "#1007")
AMAZON_REASONS = ("damaged", "no_longer_needed", "wrong_item")
SHOPIFY_REASONS = ("defective", "size_or_fit", "arrived_late")
AS_OF = ("2026-11-26T12:00:00Z", "2027-02-10T09:30:00Z")

# Shopify sandbox orders by numeric id, with their lines (line item id, SKU).
SHOPIFY_LINES = {
    450789469: ((1071823172, "TOQ-MER-GRY"), (1071823173, "MIT-SHP-M")),
    450789470: ((1071823180, "TOWEL-LIN-3"), (1071823181, "POUR-CER")),
    450789471: ((1071823190, "BOARD-MPL"),),
    450789472: ((1071823200, "SCF-WOOL-NVY"),),
    450789473: ((1071823210, "PARKA-DWN-M"),),
    450789474: ((1071823220, "FLT-KET"),),
    450789475: ((1071823230, "CNDL-BWX-3"),),
}
WEBHOOK_REASONS = ("size_too_small", "defective", "unwanted", "wrong_item")


def api_requests() -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = []
    for orders, reasons in ((AMAZON_ORDERS, AMAZON_REASONS), (SHOPIFY_ORDERS, SHOPIFY_REASONS)):
        for order_ref, reason, as_of in itertools.product(orders, reasons, AS_OF):
            requests.append({"order_ref": order_ref, "reason": reason, "as_of": as_of})
    requests += [
        {
            "order_ref": "113-4567890-1234567",
            "channel": "amazon_us",
            "ticket_id": "T-88213",
            "customer_message": "The kettle arrived with a cracked lid.",
            "reason": "damaged",
            "items": [{"sku": "KET-01", "quantity": 1}],
            "requested_resolution": "refund",
            "locale": "en-US",
            "customer_contacted_at": "2026-12-03T14:40:00Z",
            "as_of": "2026-12-03T15:00:00Z",
        },
        {
            "order_ref": "#1002",
            "channel": "shopify_ca",
            "reason": "no_longer_needed",
            "items": [{"sku": "POUR-CER", "quantity": 1}],
            "requested_resolution": "exchange",
            "customer_contacted_at": "2026-11-21T08:00:00Z",
            "as_of": "2026-11-22T10:00:00Z",
        },
        {
            "order_ref": "#1002",
            "reason": "defective",
            "items": [{"sku": "TOWEL-LIN-3", "quantity": 1}, {"sku": "POUR-CER", "quantity": 1}],
            "locale": "en-CA",
            "as_of": "2026-12-01T10:00:00Z",
        },
        {
            "order_ref": "#1005",
            "reason": "size_or_fit",
            "requested_resolution": "store_credit",
            "locale": "fr-CA",
            "as_of": "2026-11-26T12:00:00Z",
        },
        {"order_ref": "#1001", "reason": "other", "items": [{"sku": "MIT-SHP-M", "quantity": 1}]},
    ]
    # The last request has no `as_of`: its window depends on today, so it is compared without it.
    return requests


def webhook_payloads() -> list[tuple[dict[str, Any], str]]:
    payloads = []
    for number, (order_id, lines) in enumerate(SHOPIFY_LINES.items()):
        for variant, reason in enumerate(WEBHOOK_REASONS):
            returned = tuple((line_id, 1, reason) for line_id, _sku in lines[: 1 + variant % len(lines)])
            payload = return_request_payload(
                return_id=10_000 + 10 * number + variant, order_id=order_id, lines=returned
            )
            if variant == 3:
                payload["exchange_line_items"] = [{"id": 1, "quantity": 1}]
            payloads.append((payload, f"2026-11-{20 + variant:02d}T15:00:00Z"))
    return payloads


def comparable(answer: dict[str, Any], *, dated: bool = True) -> dict[str, Any]:
    kept = {key: value for key, value in answer.items() if key not in VOLATILE}
    if not dated:
        # Routed for "now": the moment and everything computed from it change from run to run.
        for key in ("as_of",):
            kept.pop(key, None)
        kept["queue"] = {k: v for k, v in kept["queue"].items() if k != "sla_due_at"}
        kept["policy"] = {
            k: v for k, v in kept["policy"].items() if k not in ("eligible", "return_window_ends")
        }
        kept.pop("explanation", None)
        kept.pop("template", None)
        kept["policy"].pop("resolution_options", None)
    return kept


async def routed_through_the_api(client: httpx.AsyncClient, headers: dict[str, str]) -> list[Any]:
    """Each request's answer, routed without and with an Idempotency-Key (both must answer alike)."""
    answers: list[Any] = []
    for index, body in enumerate(api_requests()):
        both = []
        for extra in ({}, {"Idempotency-Key": f"answers-{index}"}):
            response = await client.post("/v1/returns/route", json=body, headers=headers | extra)
            assert response.status_code == 201, response.text
            both.append(comparable(response.json(), dated="as_of" in body))
        assert both[0] == both[1], f"request {index} answers differently with an Idempotency-Key"
        answers.append(both[0])
    return answers


async def routed_through_webhooks(
    client: httpx.AsyncClient, headers: dict[str, str], drain: Any
) -> list[Any]:
    sent = []
    for payload, triggered_at in webhook_payloads():
        body, webhook_headers = delivery(payload, triggered_at=triggered_at)
        response = await client.post("/webhooks/shopify", content=body, headers=webhook_headers)
        assert response.status_code == 200, response.text
        sent.append(webhook_headers["X-Shopify-Webhook-Id"])
    await drain()
    # Routed before any API request: every decision listed is one of these events'.
    listed = await client.get("/v1/decisions", params={"limit": 200}, headers=headers)
    items = listed.json()["items"]
    assert len(items) == len(sent)
    return sorted((comparable(item) for item in items), key=lambda a: json.dumps(a, sort_keys=True))


@pytest.fixture
def drain_worker(runtime: Runtime) -> Any:
    async def drain() -> None:
        worker = Worker(runtime.database, runtime.handlers)
        while await worker.process_next():
            pass

    return drain


@pytest.fixture
async def answers(client: httpx.AsyncClient, make_key: MakeKey, drain_worker: Any) -> dict[str, list[Any]]:
    headers = await make_key(Scope.route, Scope.read)
    webhook = await routed_through_webhooks(client, headers, drain_worker)
    return {"api": await routed_through_the_api(client, headers), "webhook": webhook}


async def test_every_answer_is_the_one_recorded(answers: dict[str, list[Any]]) -> None:
    if os.environ.get("UPDATE_ROUTE_ANSWERS") == "1":
        ANSWERS.write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(ANSWERS.read_text())
    assert len(answers["api"]) == len(recorded["api"])
    for index, (now, before) in enumerate(zip(answers["api"], recorded["api"], strict=True)):
        assert now == before, (
            f"API request {index // 2} ({'keyed' if index % 2 else 'unkeyed'}) answers differently"
        )
    assert answers["webhook"] == recorded["webhook"]
    assert len(recorded["webhook"]) == len(webhook_payloads())
