"""Shopify webhook deliveries as Shopify sends them, signed for the test settings' secrets."""

from __future__ import annotations

import json
import uuid
from typing import Any

from app.services.webhooks.signature import signature_of

WEBHOOK_SECRET = "test-webhook-secret-current"
PREVIOUS_WEBHOOK_SECRET = "test-webhook-secret-previous"

# Sandbox order #1001 (shipped to Ontario, delivered 2026-11-14) and its two lines.
ORDER_ID = 450789469
TOQUE_LINE = 1071823172  # TOQ-MER-GRY, 39.00 CAD
MITTENS_LINE = 1071823173  # MIT-SHP-M, 45.00 CAD


def return_request_payload(
    return_id: int = 9_001,
    order_id: int = ORDER_ID,
    lines: tuple[tuple[int, int, str], ...] = ((TOQUE_LINE, 1, "size_too_small"),),
    **extra: Any,
) -> dict[str, Any]:
    """A `returns/request` payload: (line item id, quantity, return_reason) per returned line."""
    return {
        "id": return_id,
        "admin_graphql_api_id": f"gid://shopify/Return/{return_id}",
        "status": "requested",
        "name": "#1001-R1",
        "order": {"id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}"},
        "total_return_line_items": len(lines),
        "return_line_items": [
            {
                "id": 70_000 + index,
                "admin_graphql_api_id": f"gid://shopify/ReturnLineItem/{70_000 + index}",
                "fulfillment_line_item": {
                    "id": 80_000 + index,
                    "admin_graphql_api_id": f"gid://shopify/FulfillmentLineItem/{80_000 + index}",
                    "line_item": {"id": line_id, "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}"},
                },
                "quantity": quantity,
                "return_reason": reason,
                "return_reason_note": "",
                "customer_note": "Please call me at 555-0100, Jane",
            }
            for index, (line_id, quantity, reason) in enumerate(lines)
        ],
        "exchange_line_items": [],
        "total_exchange_line_items": 0,
        **extra,
    }


def delivery(
    payload: dict[str, Any] | bytes,
    *,
    topic: str = "returns/request",
    webhook_id: str | None = None,
    triggered_at: str = "2026-11-20T15:00:00.123456789Z",
    secret: str | None = WEBHOOK_SECRET,
    shop_domain: str = "maple-and-thread.myshopify.com",
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery (unsigned when `secret` is None)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": triggered_at,
        "X-Shopify-API-Version": "2026-10",
    }
    if secret is not None:
        headers["X-Shopify-Hmac-Sha256"] = signature_of(secret, body)
    return body, headers


def return_event_payload(
    return_id: int = 9_001, status: str | None = None, updated_at: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A return status event (`returns/approve`, `returns/close`, ...) about Return `return_id`."""
    payload: dict[str, Any] = {
        "id": return_id,
        "admin_graphql_api_id": f"gid://shopify/Return/{return_id}",
        "order": {"id": ORDER_ID, "admin_graphql_api_id": f"gid://shopify/Order/{ORDER_ID}"},
        **extra,
    }
    if status is not None:
        payload["status"] = status
    if updated_at is not None:
        payload["updated_at"] = updated_at
    return payload


def refund_payload(
    refund_id: int = 5_001,
    order_id: int = ORDER_ID,
    note: str | None = None,
    transactions: tuple[tuple[str, str, str], ...] = (("refund", "10.00", "success"),),
    currency: str = "CAD",
) -> dict[str, Any]:
    """A `refunds/create` payload (REST-shaped): (kind, amount, status) per transaction."""
    return {
        "id": refund_id,
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
        "order_id": order_id,
        "created_at": "2026-11-21T10:15:00-05:00",
        "note": note,
        "restock": False,
        "user_id": 548380009,
        "transactions": [
            {
                "id": 389_404_469 + index,
                "order_id": order_id,
                "kind": kind,
                "gateway": "shopify_payments",
                "status": status,
                "amount": amount,
                "currency": currency,
            }
            for index, (kind, amount, status) in enumerate(transactions)
        ],
        "refund_line_items": [
            {
                "id": 104_689_539,
                "line_item_id": TOQUE_LINE,
                "quantity": 1,
                "restock_type": "no_restock",
                "subtotal_set": {"presentment_money": {"amount": "39.00", "currency_code": currency}},
            }
        ],
    }
