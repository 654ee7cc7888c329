"""Routing a return, the one use case behind `POST /v1/returns/route` and the `returns/request` webhook:
claim the Idempotency-Key, resolve the order, decide, persist, record.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.connectors.registry import Connectors
from app.db import decisions
from app.db.database import Database
from app.db.decisions import Origin
from app.domain import Decision, ExplanationStep, LineView, Market, Order, OrderView, ReturnRequest
from app.errors import ChannelMismatch, OrderNotFound
from app.policy import PolicyBook
from app.services.idempotency import Idempotency, Replay


@dataclass(frozen=True)
class Routed:
    """A request's answer: the decision made now, stored as `answer` (JSON), or the one replayed."""

    decision: Decision | None = None
    answer: str = ""
    replay: Replay | None = None


class Routing:
    """What routing a return needs, and nothing more."""

    def __init__(
        self,
        *,
        orders: Connectors,
        policy: PolicyBook,
        markets: Mapping[str, Market],
        database: Database,
        idempotency: Idempotency,
    ) -> None:
        self._orders = orders
        self._policy = policy
        self._markets = dict(markets)
        self._database = database
        self._idempotency = idempotency

    async def route(
        self,
        request: ReturnRequest,
        origin: Origin,
        now: datetime,
        *,
        idempotency_key: str | None = None,
        fingerprint: str = "",
        order: Order | None = None,
        session: AsyncSession | None = None,
    ) -> Routed:
        """Decide `request` and store the decision; with an `idempotency_key`, at most once per key.

        `order` is the order when the caller resolved it already; `session` is the caller's own
        transaction to store the decision in (a webhook's effect is written with its event).
        """
        key_owner = origin.api_key_id or ""
        async with self._idempotency.claim(key_owner, idempotency_key, fingerprint) as claim:
            if claim.replay is not None:
                return Routed(replay=claim.replay)
            if order is None:
                order = await self.resolve_order(request)
            decision = self.decide(order, request, now)
            encoded = decisions.encode(decision, order, request, origin)
            await decisions.save(self._database, encoded, completes=claim.record(201), session=session)
            claim.completed = True
        metrics.record_decision(decision.channel, decision.classification.value, decision.queue.name)
        return Routed(decision=decision, answer=encoded.answer)

    async def resolve_order(self, request: ReturnRequest) -> Order:
        """The order behind the request, from the first channel that has it."""
        candidates = self._orders.candidates(request.order_ref, request.channel)
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

    def decide(self, order: Order, request: ReturnRequest, now: datetime) -> Decision:
        """Everything but the I/O: the policy's verdict, shaped as the contract's decision."""
        as_of = request.as_of or now
        verdict = self._policy.decide(order, request, self._markets[order.channel], as_of)
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
            explanation=[*where_from(order), *verdict.explanation],
        )


def where_from(order: Order) -> list[ExplanationStep]:
    """The explanation's first step for an order read from the order mirror: how current it was."""
    if order.mirrored_at is None:
        return []
    synced = order.mirrored_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [ExplanationStep(rule="order.source", result=f"order from mirror, synced {synced}")]


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
