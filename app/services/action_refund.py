"""The refund action: `refundCreate` under the action's own idempotency key, net of the restocking fee."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from app.action_state import ActionState
from app.connectors.shopify import RefundSeen, RefundTransaction, ShopifyConnector
from app.db import actions as rows
from app.db.tables import Action, ShopifyRefund
from app.domain import ActionError, PlannedPayment
from app.errors import ShopifyRejected, UpstreamError
from app.services import action_plan as plans
from app.services.action_steps import Step, never_ran
from app.services.settlement import refund_lines

MARKER_PREFIX = "returns-router action "


def marker(action_id: uuid.UUID) -> str:
    """Written into a refund's note, so a read-back or a webhook finds the action it came from."""
    return f"{MARKER_PREFIX}{action_id}"


def marked_action(note: str | None) -> uuid.UUID | None:
    """The action whose marker a refund's note carries, if any."""
    if not note or MARKER_PREFIX not in note:
        return None
    try:
        return uuid.UUID(note.split(MARKER_PREFIX, 1)[1][:36])
    except ValueError:
        return None


# Refund ---------------------------------------------------------------------------------


async def run_refund(step: Step, shopify: ShopifyConnector) -> None:
    action = step.action
    lines = action.plan.lines
    if action.status is ActionState.requested:
        try:
            suggested = await shopify.suggested_refund(action.order_id, lines)
            transactions = plans.refund_transactions(suggested, action.plan.fee_percent or Decimal(0))
        except (UpstreamError, ShopifyRejected) as error:
            await step.fail(error)  # only reads so far: nothing was sent
            return
        refund_total = plans.total(transactions, suggested.amount.currency)
        plan = action.plan.model_copy(update={"transactions": [_planned(t) for t in transactions]})
        await step.move(
            ActionState.submitted,
            plan=plan,
            amount=refund_total,
            submitted_at=datetime.now(UTC),
        )
    elif (found := await _refund_read_back(step, shopify)) is not None:
        await _refund_done(step, found)
        return
    elif action.status is ActionState.unknown and not step.settled():
        return  # lost answer, not visible yet: wait before sending anything again
    else:
        # Take the step, so one runner re-sends. The key is the action's id: re-sending is safe
        # while Shopify remembers it, and the read-back above covers the time after.
        await step.move(ActionState.submitted)
    transactions = [RefundTransaction(p.gateway, p.parent_id, p.amount) for p in action.plan.transactions]
    note = " ".join(filter(None, [action.plan.note, f"({marker(action.id)})"]))
    try:
        refund = await shopify.create_refund(
            str(action.id), action.order_id, lines, transactions, note=note, notify=action.plan.notify
        )
    except ShopifyRejected as error:
        await step.fail(error)
        return
    except UpstreamError as error:
        if never_ran(error):
            await step.fail(error)
            return
        await step.move(ActionState.unknown, error=ActionError(code=error.code, detail=error.detail))
        if (found := await _refund_read_back(step, shopify, quietly=True)) is not None:
            await _refund_done(step, found)
        return
    await _refund_done(step, refund)


async def _refund_read_back(
    step: Step, shopify: ShopifyConnector, quietly: bool = False
) -> RefundSeen | None:
    try:
        refunds = await shopify.order_refunds(step.action.order_id)
    except UpstreamError:
        if quietly:
            return None
        raise
    tag = marker(step.action.id)
    return next((r for r in refunds if r.note and tag in r.note), None)


async def _refund_done(step: Step, refund: RefundSeen) -> None:
    now = datetime.now(UTC)
    await step.move(
        ActionState.succeeded,
        shopify={"refund_id": refund.refund_id, "order_id": step.action.order_id},
        amount=refund.amount,
        error=None,
    )
    async with step.database.transaction() as session:
        await rows.record_refund(session, _refund_row(step.action, refund, now))


def _refund_row(action: Action, refund: RefundSeen, now: datetime) -> ShopifyRefund:
    return ShopifyRefund(
        refund_id=refund.refund_id,
        channel=action.channel,
        order_id=action.order_id,
        action_id=action.id,
        amount=refund.amount,
        created_at=refund.created_at,
        recorded_at=now,
        lines=refund_lines(action.plan.lines),  # what the action asked Shopify to refund
    )


def _planned(transaction: RefundTransaction) -> PlannedPayment:
    return PlannedPayment(
        gateway=transaction.gateway, parent_id=transaction.parent_id, amount=transaction.amount
    )
