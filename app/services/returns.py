"""One routing request, end to end: identify the channel, resolve the order, decide, store."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.connectors.registry import Connectors
from app.db import decisions
from app.domain import Decision, LineView, Order, OrderView, ReturnRequest
from app.errors import ChannelMismatch, OrderNotFound
from app.policy import PolicyBook
from app.services.api_keys import Caller


async def resolve_order(connectors: Connectors, request: ReturnRequest) -> Order:
    """The order behind the request, from the first channel that has it."""
    candidates = connectors.candidates(request.order_ref, request.channel)
    for source in candidates:
        try:
            order = await source.resolve_order(request.order_ref)
        except OrderNotFound:
            if source is candidates[-1]:
                raise
            continue
        if request.channel is not None and order.channel != request.channel:
            raise ChannelMismatch(f"Order {request.order_ref!r} belongs to channel {order.channel}.")
        return order
    raise AssertionError("candidates() never answers an empty list")


def decide(
    policy: PolicyBook, connectors: Connectors, order: Order, request: ReturnRequest, now: datetime
) -> Decision:
    """Everything but the I/O: the policy's verdict, shaped as the contract's decision."""
    as_of = request.as_of or now
    channel = connectors.source(order.channel).channel
    verdict = policy.decide(order, request, channel, as_of)
    return Decision(
        decision_id=str(uuid.uuid4()),
        created_at=now,
        as_of=as_of,
        channel=order.channel,
        platform=order.platform,
        classification=verdict.classification,
        ticket_id=request.ticket_id,
        reason=request.reason,
        fault=verdict.fault,
        requested_resolution=request.requested_resolution,
        order=view_of(order),
        policy=verdict.policy,
        template=verdict.template,
        queue=verdict.queue,
        sandbox=order.sandbox,
        explanation=verdict.explanation,
    )


def view_of(order: Order) -> OrderView:
    return OrderView(
        order_ref=order.order_ref,
        placed_at=order.placed_at,
        shipped_at=order.shipped_at,
        delivered_at=order.delivered_at,
        delivered_at_source=order.delivered_at_source,
        fulfillment=order.fulfillment,
        currency=order.currency,
        total=order.total,
        ship_to_region=order.ship_to_region,
        lines=[
            LineView(sku=line.sku, title=line.title, quantity=line.quantity, unit_price=line.unit_price)
            for line in order.lines
        ],
    )


async def store(
    session: AsyncSession,
    decision: Decision,
    order: Order,
    request: ReturnRequest,
    caller: Caller | None,
    webhook_event_id: str | None = None,
) -> dict[str, Any]:
    """Append the decision (in the caller's transaction); returns the answer as stored.

    The audit trail: the API key that asked for it, or the webhook that caused it.
    """
    return await decisions.add(
        session,
        decision,
        order,
        request,
        api_key_id=caller.key_id if caller else None,
        webhook_event_id=webhook_event_id,
    )


async def append(
    pool: asyncpg.Pool, decision: Decision, order: Order, request: ReturnRequest, caller: Caller | None
) -> bytes:
    """Store the decision on its own, committed by one statement; returns the answer as JSON."""
    return await decisions.append(
        pool, decision, order, request, api_key_id=caller.key_id if caller else None
    )
