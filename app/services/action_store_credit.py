"""The store credit action: `storeCreditAccountCredit` to the order's customer, with the policy's bonus.

The customer's GID is read from Shopify each time it is needed, never stored. The mutation takes
no idempotency key: it is sent once, and a lost answer is read back from the customer's credits.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.action_state import ActionState
from app.connectors.shopify import CreditSeen, ShopifyConnector
from app.domain import ActionError, Money
from app.errors import ShopifyRejected, UpstreamError
from app.services.action_steps import CLOCK_SKEW, Step, never_ran


async def run_store_credit(step: Step, shopify: ShopifyConnector) -> None:
    action = step.action
    amount = action.plan.amount
    assert amount is not None  # planned with the action
    if action.status is not ActionState.requested:
        await _read_back(step, shopify, amount)
        return
    try:
        customer = await shopify.order_customer(action.order_id)
    except (UpstreamError, ShopifyRejected) as error:
        await step.fail(error)
        return
    if customer is None:
        await step.move(
            ActionState.failed,
            error=ActionError(code="no_customer", detail="The order has no customer account to credit."),
        )
        return
    await step.move(ActionState.submitted, submitted_at=datetime.now(UTC))
    try:
        credit = await shopify.credit_store_credit(customer, amount)
    except ShopifyRejected as error:
        await step.fail(error)
        return
    except UpstreamError as error:
        if never_ran(error):
            await step.fail(error)
            return
        await step.move(ActionState.unknown, error=ActionError(code=error.code, detail=error.detail))
        return
    await _done(step, credit)


async def _read_back(step: Step, shopify: ShopifyConnector, amount: Money) -> None:
    action = step.action
    customer = await shopify.order_customer(action.order_id)
    credits = await shopify.store_credits(customer) if customer else []
    since = (action.submitted_at or action.created_at) - CLOCK_SKEW
    matching = [c for c in credits if c.created_at >= since and c.amount.rounded() == amount]
    if len(matching) == 1:
        await _done(step, matching[0])
    elif not matching and step.settled():
        await step.move(
            ActionState.failed, error=ActionError(code="not_created", detail="Shopify shows no such credit.")
        )


async def _done(step: Step, credit: CreditSeen) -> None:
    await step.move(
        ActionState.succeeded,
        shopify={"order_id": step.action.order_id, "store_credit_transaction_id": credit.transaction_id},
        amount=credit.amount,
        error=None,
    )
