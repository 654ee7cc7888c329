"""Routing a return, the one use case behind `POST /v1/returns/route` and the `returns/request` webhook:
claim the Idempotency-Key, resolve the order, decide, persist, record.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.connectors.base import OrderSource
from app.connectors.registry import Connectors
from app.db import decisions
from app.db.database import Database
from app.db.decisions import Origin
from app.domain import Decision, ExplanationStep, LineView, Market, Order, OrderView, Platform, ReturnRequest
from app.errors import AmbiguousOrderRef, ChannelMismatch, OrderNotFound
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
        notes: Sequence[ExplanationStep] = (),
    ) -> Routed:
        """Decide `request` and store the decision; with an `idempotency_key`, at most once per key.

        `order` is the order when the caller resolved it already; `session` is the caller's own
        transaction to store the decision in (a webhook's effect is written with its event); `notes`
        head the explanation (what the caller had to assume to make the request).
        """
        key_owner = origin.api_key_id or ""
        async with self._idempotency.claim(key_owner, idempotency_key, fingerprint) as claim:
            if claim.replay is not None:
                return Routed(replay=claim.replay)
            if order is None:
                order = await self.resolve_order(request)
            decision = self.decide(order, request, now, notes)
            encoded = decisions.encode(decision, order, request, origin)
            await decisions.save(self._database, encoded, completes=claim.record(201), session=session)
            claim.completed = True
        metrics.record_decision(decision.channel, decision.classification.value, decision.queue.name)
        return Routed(decision=decision, answer=encoded.answer)

    async def resolve_order(self, request: ReturnRequest) -> Order:
        """The order behind the request, from the channel that has it.

        Amazon order ids are unique across Amazon: the first seller account that has it answers. A
        Shopify order name may be taken in several stores: each is asked, and a name found in more
        than one is `AmbiguousOrderRef` unless the request names its channel.
        """
        candidates = self._orders.candidates(request.order_ref, request.channel)
        if len(candidates) == 1:
            order = await candidates[0].resolve_order(request.order_ref)
        elif candidates[0].channel.platform is Platform.shopify:
            order = await _the_only_one(candidates, request.order_ref)
        else:
            order = await _the_first(candidates, request.order_ref)
        if request.channel is not None and order.channel != request.channel:
            raise ChannelMismatch(f"Order {request.order_ref!r} belongs to channel {order.channel}.")
        return order

    def decide(
        self, order: Order, request: ReturnRequest, now: datetime, notes: Sequence[ExplanationStep] = ()
    ) -> Decision:
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
            explanation=[*where_from(order), *notes, *verdict.explanation],
        )


def where_from(order: Order) -> list[ExplanationStep]:
    """The explanation's first step for an order read from the order mirror: how current it was."""
    if order.mirrored_at is None:
        return []
    synced = order.mirrored_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [ExplanationStep(rule="order.source", result=f"order from mirror, synced {synced}")]


async def _the_first(sources: Sequence[OrderSource], order_ref: str) -> Order:
    for source in sources[:-1]:
        try:
            return await source.resolve_order(order_ref)
        except OrderNotFound:
            continue
    return await sources[-1].resolve_order(order_ref)


async def _the_only_one(sources: Sequence[OrderSource], order_ref: str) -> Order:
    answers = await asyncio.gather(
        *(source.resolve_order(order_ref) for source in sources), return_exceptions=True
    )
    found = [answer for answer in answers if isinstance(answer, Order)]
    for answer in answers:
        # An upstream that could not answer might hold the order too: which one is meant is not known.
        if isinstance(answer, BaseException) and not isinstance(answer, OrderNotFound):
            raise answer
    if len(found) > 1:
        channels = [order.channel for order in found]
        raise AmbiguousOrderRef(
            f"Order {order_ref!r} is in more than one store ({', '.join(channels)}); "
            "name the `channel` it belongs to.",
            extra={"channels": channels},
        )
    if found:
        return found[0]
    keys = ", ".join(source.channel.key for source in sources)
    raise OrderNotFound(f"No order {order_ref.strip()!r} in any of the channels {keys}.")


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
