"""`returns/request`: a customer asked for a return in Shopify; route it like a helpdesk request.

The decision is made for the moment the customer asked (the event's time), not for when the
worker got to it, so a retried event does not find a window closed that was open.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import webhook_events
from app.db.decisions import Origin
from app.db.tables import WebhookEvent
from app.domain import Order, Reason, RequestedResolution, ReturnItem, ReturnRequest
from app.services import outcomes
from app.services.returns import Routing
from app.services.webhooks import return_status
from app.services.webhooks.handlers import Apply, Prepare, UnusableEvent

# Shopify's ReturnReason values (lower case in webhook payloads) in the contract's reasons.
REASONS = {
    "defective": Reason.defective,
    "wrong_item": Reason.wrong_item,
    "not_as_described": Reason.not_as_described,
    "size_too_small": Reason.size_or_fit,
    "size_too_large": Reason.size_or_fit,
    "unwanted": Reason.no_longer_needed,
    "style": Reason.no_longer_needed,
    "color": Reason.no_longer_needed,
    "other": Reason.other,
    "unknown": Reason.other,
}

# A return of several lines gets one reason: the seller's fault first, since it changes who pays.
PRECEDENCE = (
    Reason.defective,
    Reason.wrong_item,
    Reason.not_as_described,
    Reason.size_or_fit,
    Reason.no_longer_needed,
    Reason.other,
)


def handler(routing: Routing) -> Prepare:
    """Route the return the customer asked for, as a helpdesk request would be (`Routing.route`)."""

    async def prepare(event: WebhookEvent, now: datetime) -> Apply:
        payload = event.payload or {}
        order_gid = _order_gid(payload)
        lines = _return_lines(payload)
        # The order first: the return names its lines by line item, the request by SKU.
        order = await routing.resolve_order(ReturnRequest(order_ref=order_gid, channel=event.channel))
        request = _request(event, payload, order_gid, order, lines)

        async def apply(session: AsyncSession) -> str:
            # One decision per return, even if Shopify announced it twice under two webhook ids
            # (the worker holds the return's lock, so the check and the insert cannot interleave).
            await return_status.record(session, event, "requested")
            earlier = await webhook_events.processed_before(session, event)
            if earlier is not None:
                return f"already decided by webhook {earlier.id}"
            routed = await routing.route(
                request, Origin(webhook_event_id=event.id), now, order=order, session=session
            )
            assert routed.decision is not None  # no Idempotency-Key: nothing to replay
            # A refund or a status of this return may have been processed before it was decided.
            await outcomes.settle(session, uuid.UUID(routed.decision.decision_id))
            return f"decision {routed.decision.decision_id}"

        return apply

    return prepare


def _request(
    event: WebhookEvent, payload: dict[str, Any], order_gid: str, order: Order, lines: list[dict[str, Any]]
) -> ReturnRequest:
    """The return as a routing request, made for the moment the customer asked."""
    try:
        return ReturnRequest(
            order_ref=order_gid,
            channel=event.channel,
            ticket_id=None,
            reason=_reason(lines),
            items=_items(order, lines),
            requested_resolution=(
                RequestedResolution.exchange
                if payload.get("exchange_line_items")
                else RequestedResolution.unknown
            ),
            customer_contacted_at=event.occurred_at,
            as_of=event.occurred_at,
        )
    except ValidationError as error:
        raise UnusableEvent(
            f"the return does not make a valid request: {error.error_count()} errors"
        ) from error


def _order_gid(payload: dict[str, Any]) -> str:
    gid = return_status.order_gid(payload)
    if gid is None:
        raise UnusableEvent("the return names no order (order.admin_graphql_api_id or order.id)")
    return gid


def _return_lines(payload: dict[str, Any]) -> list[dict[str, Any]]:
    lines = payload.get("return_line_items")
    if not isinstance(lines, list) or not lines or not all(isinstance(line, dict) for line in lines):
        raise UnusableEvent("the return has no return_line_items")
    return lines


def _reason(lines: list[dict[str, Any]]) -> Reason:
    reasons = {REASONS.get(str(line.get("return_reason", "")).lower(), Reason.other) for line in lines}
    return next(reason for reason in PRECEDENCE if reason in reasons)


def _items(order: Order, lines: list[dict[str, Any]]) -> list[ReturnItem]:
    """The returned quantities by SKU, through the order's lines (`line_id` is the LineItem GID)."""
    sku_of = {line.line_id: line.sku for line in order.lines}
    quantities: Counter[str] = Counter()
    for line in lines:
        line_gid = _line_item_gid(line)
        if line_gid not in sku_of:
            raise UnusableEvent(f"return line {line_gid} is not a line of order {order.order_ref}")
        sku = sku_of[line_gid]
        if not sku:
            raise UnusableEvent(f"line {line_gid} of order {order.order_ref} has no SKU to name it by")
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or quantity < 1:
            raise UnusableEvent(f"return line {line_gid} has no positive quantity")
        quantities[sku] += quantity
    return [ReturnItem(sku=sku, quantity=quantity) for sku, quantity in quantities.items()]


def _line_item_gid(line: dict[str, Any]) -> str:
    # The line item sits under the fulfillment line item that was returned.
    fulfillment_line = line.get("fulfillment_line_item")
    item = fulfillment_line.get("line_item") if isinstance(fulfillment_line, dict) else line.get("line_item")
    if isinstance(item, dict):
        gid = item.get("admin_graphql_api_id")
        if isinstance(gid, str) and gid.startswith("gid://shopify/LineItem/"):
            return gid
        if isinstance(item.get("id"), int):
            return f"gid://shopify/LineItem/{item['id']}"
    raise UnusableEvent("a return line names no line item")
