"""`returns/request`: a customer asked for a return in Shopify; route it like a helpdesk request.

The decision is made for the moment the customer asked (the event's time), not for when the
worker got to it, so a retried event does not find a window closed that was open.

Lines are matched to the order by their line item, so a line without a SKU (a point-of-sale custom
sale) is returned like any other. A payload that lists no lines (Shopify's own sample does not) is
completed from the Return, read back from Shopify; where there is no Shopify to ask (the sandbox) or
the Return lists none either, the decision covers every line of the order and its explanation says so.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.connectors.registry import Connectors
from app.connectors.shopify_returns import RequestedLine
from app.db import webhook_events
from app.db.decisions import Origin
from app.db.tables import WebhookEvent
from app.domain import ExplanationStep, Order, Reason, RequestedResolution, ReturnItem, ReturnRequest
from app.services import outcomes
from app.services.returns import Routing
from app.services.webhooks import return_status
from app.services.webhooks.handlers import Apply, Prepare, UnusableEvent, shopify_gid

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

# The handles of Shopify's reason library are many and category-specific: they are read by their words,
# the seller's fault first. A handle none of these name is `other`.
_HANDLE_WORDS = (
    (("missing",), Reason.missing_parts),
    (("defect", "damage", "broken", "faulty", "quality"), Reason.defective),
    (("wrong",), Reason.wrong_item),
    (("described", "description", "different"), Reason.not_as_described),
    (("late",), Reason.arrived_late),
    (("size", "small", "large", "tight", "loose", "fit", "comfort", "long", "short"), Reason.size_or_fit),
    (("unwanted", "mind", "needed", "style", "color", "colour"), Reason.no_longer_needed),
)

# A return of several lines gets one reason: the seller's fault first, since it changes who pays.
PRECEDENCE = (
    Reason.defective,
    Reason.missing_parts,
    Reason.wrong_item,
    Reason.not_as_described,
    Reason.arrived_late,
    Reason.size_or_fit,
    Reason.no_longer_needed,
    Reason.other,
)


def handler(routing: Routing, connectors: Connectors) -> Prepare:
    """Route the return the customer asked for, as a helpdesk request would be (`Routing.route`)."""

    async def prepare(event: WebhookEvent, now: datetime) -> Apply:
        payload = event.payload or {}
        order_gid = _order_gid(payload)
        lines, notes = _return_lines(payload), list[ExplanationStep]()
        if not lines:
            lines, notes = await _lines_from_shopify(connectors, event)
        # The order first: the return names its lines by line item, and so does the request.
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
                request, Origin(webhook_event_id=event.id), now, order=order, session=session, notes=notes
            )
            assert routed.decision is not None  # no Idempotency-Key: nothing to replay
            # A refund or a status of this return may have been processed before it was decided.
            await outcomes.settle(session, uuid.UUID(routed.decision.decision_id))
            return f"decision {routed.decision.decision_id}"

        return apply

    return prepare


async def _lines_from_shopify(
    connectors: Connectors, event: WebhookEvent
) -> tuple[list[RequestedLine], list[ExplanationStep]]:
    """The lines of a Return whose webhook listed none, and the step that says where they came from."""
    shopify = connectors.shopify(event.channel)
    if shopify is None or event.subject is None:
        return [], [
            _note(
                "the returns/request lists no lines, and there is no Shopify store to read the Return from "
                "(sandbox): decided for every line of the order"
            )
        ]
    read = await shopify.read_return(event.subject)
    lines = [line for line in read.lines if line.line_item_id] if read is not None else []
    if not lines:
        return [], [
            _note("the returns/request and the Return in Shopify list no lines: decided for every line")
        ]
    return lines, [_note(f"the returns/request lists no lines: {len(lines)} read from the Return in Shopify")]


def _note(result: str) -> ExplanationStep:
    return ExplanationStep(rule="shopify.return_lines", result=result)


def _request(
    event: WebhookEvent, payload: dict[str, Any], order_gid: str, order: Order, lines: list[RequestedLine]
) -> ReturnRequest:
    """The return as a routing request, made for the moment the customer asked."""
    try:
        return ReturnRequest(
            order_ref=order_gid,
            channel=event.channel,
            ticket_id=None,
            reason=_reason(lines),
            items=_items(order, lines) if lines else None,
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
        raise UnusableEvent("the return names no order (order.admin_graphql_api_id, order.id or order_id)")
    return gid


def _return_lines(payload: dict[str, Any]) -> list[RequestedLine]:
    """The payload's return lines; empty when it lists none."""
    lines = payload.get("return_line_items")
    if lines is None or lines == []:
        return []
    if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
        raise UnusableEvent("the return's return_line_items are not a list of lines")
    return [
        RequestedLine(
            line_item_id=_line_item_gid(line),
            quantity=line.get("quantity") if isinstance(line.get("quantity"), int) else 0,
            reason=str(line.get("return_reason", "")).lower(),
        )
        for line in lines
    ]


def _reason(lines: list[RequestedLine]) -> Reason:
    reasons = {reason_of(line.reason) for line in lines}
    return next((reason for reason in PRECEDENCE if reason in reasons), Reason.other)


def reason_of(shopify_reason: str) -> Reason:
    """The contract's reason for Shopify's: a ReturnReason value (`size_too_small`), or a reason
    definition's handle (`size-too-small`, `too-tight`, `arrived-late`), read by the words it holds."""
    name = shopify_reason.lower().replace("-", "_")
    if name in REASONS:
        return REASONS[name]
    return next((reason for words, reason in _HANDLE_WORDS if any(w in name for w in words)), Reason.other)


def _items(order: Order, lines: list[RequestedLine]) -> list[ReturnItem]:
    """The returned quantities of the order's lines (`line_id` is the LineItem GID).

    A line is named by its SKU, as a helpdesk would name it, when no other line of the order has the
    same SKU; otherwise (a custom sale has none) by its line item.
    """
    skus = Counter(line.sku for line in order.lines if line.sku)
    sku_of = {line.line_id: line.sku for line in order.lines}
    quantities: Counter[str] = Counter()
    for line in lines:
        if line.line_item_id is None or line.line_item_id not in sku_of:
            raise UnusableEvent(f"return line {line.line_item_id} is not a line of order {order.order_ref}")
        if isinstance(line.quantity, bool) or line.quantity < 1:
            raise UnusableEvent(f"return line {line.line_item_id} has no positive quantity")
        quantities[line.line_item_id] += line.quantity
    items = []
    for line_id, quantity in quantities.items():
        sku = sku_of[line_id]
        if sku and skus[sku] == 1:
            items.append(ReturnItem(sku=sku, quantity=quantity))
        else:
            items.append(ReturnItem(line_id=line_id, quantity=quantity))
    return items


def _line_item_gid(line: dict[str, Any]) -> str:
    # The line item sits under the fulfillment line item that was returned.
    fulfillment_line = line.get("fulfillment_line_item")
    item = fulfillment_line.get("line_item") if isinstance(fulfillment_line, dict) else line.get("line_item")
    gid = shopify_gid("LineItem", item) if isinstance(item, dict) else None
    if gid is None:
        raise UnusableEvent("a return line names no line item")
    return gid
