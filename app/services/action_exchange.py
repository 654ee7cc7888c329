"""The exchange action: a return with exchange lines (`returnCreate`), then processing it (`returnProcess`).

Neither mutation takes an idempotency key. Each is sent once by the runner that won the step
before it; a lost answer is read back from the order's returns, never sent blindly again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.action_state import ActionState
from app.connectors.shopify import ReturnSeen, ShopifyConnector
from app.domain import ActionError
from app.errors import ShopifyRejected, UpstreamError, ValidationProblem
from app.services.action_steps import CLOCK_SKEW, Step, never_ran

# Returns the customer asked for, or that ended without us: never the one this action created.
_NOT_OURS = frozenset({"REQUESTED", "DECLINED", "CANCELED"})
# A return that ended without being processed: it cannot be processed any more.
_ENDED = frozenset({"DECLINED", "CANCELED"})


async def run_exchange(step: Step, shopify: ShopifyConnector) -> None:
    action = step.action
    if action.status is ActionState.requested:
        try:
            return_lines = await _fulfillment_lines(shopify, action.order_id, action.plan.lines)
        except (UpstreamError, ShopifyRejected, ValidationProblem) as error:
            await step.fail(error)  # only reads so far
            return
        await step.move(
            ActionState.submitted,
            plan=action.plan.model_copy(update={"return_lines": return_lines}),
            submitted_at=datetime.now(UTC),
        )
        created = await _create(step, shopify)
    else:
        created = await _read_back(step, shopify)
    if created is None:
        return
    if created.processed:
        await _done(step, created)
        return
    if created.status in _ENDED:
        # Declined or canceled in Shopify before it was processed: no exchange, the decision is free.
        ended = created.status.lower()
        detail = f"Shopify shows the return {ended} before it was processed."
        await step.move(ActionState.failed, error=ActionError(code=f"return_{ended}", detail=detail))
        return
    # Processing is not blind here: the return was just created, or read back unprocessed.
    await step.move(step.action.status)  # take the step: only one runner processes
    try:
        processed = await shopify.process_return(created)
    except ShopifyRejected as error:
        await step.move(ActionState.unknown, error=ActionError(code=error.code, detail=error.detail))
        return
    except UpstreamError as error:
        await step.move(ActionState.unknown, error=ActionError(code=error.code, detail=error.detail))
        return
    await _done(step, processed)


async def _fulfillment_lines(
    shopify: ShopifyConnector, order_id: str, lines: list[tuple[str, int]]
) -> list[tuple[str, int]]:
    """The fulfilment line items behind the order lines to return, filling each in turn."""
    available = await shopify.fulfillment_lines(order_id)
    chosen: list[tuple[str, int]] = []
    for line_id, quantity in lines:
        wanted = quantity
        for fulfillment_line, fulfilled in available.get(line_id, []):
            taken = min(wanted, fulfilled)
            if taken > 0:
                chosen.append((fulfillment_line, taken))
                wanted -= taken
        if wanted > 0:
            raise ValidationProblem(f"Line {line_id} has fewer fulfilled units than the exchange returns.")
    return chosen


async def _create(step: Step, shopify: ShopifyConnector) -> ReturnSeen | None:
    action = step.action
    return_lines = action.plan.return_lines
    exchange_for = action.plan.exchange_for
    try:
        created = await shopify.create_return(action.order_id, return_lines, exchange_for)
    except ShopifyRejected as error:
        await step.fail(error)
        return None
    except UpstreamError as error:
        if never_ran(error):
            await step.fail(error)
            return None
        await step.move(ActionState.unknown, error=ActionError(code=error.code, detail=error.detail))
        return await _read_back(step, shopify, quietly=True)
    await step.move(action.status, shopify=_ids(action.order_id, created))
    return created


async def _read_back(step: Step, shopify: ShopifyConnector, quietly: bool = False) -> ReturnSeen | None:
    """The return this action created, from the order's returns; None when it is not (yet) there."""
    action = step.action
    try:
        returns = await shopify.order_returns(action.order_id)
    except UpstreamError:
        if quietly:
            return None
        raise
    known = action.shopify.get("return_id")
    if known:
        found = next((r for r in returns if r.return_id == known), None)
    else:
        since = (action.submitted_at or action.created_at) - CLOCK_SKEW
        candidates = [r for r in returns if r.created_at >= since and r.status not in _NOT_OURS]
        found = candidates[0] if len(candidates) == 1 else None
        if found is not None:
            await step.move(action.status, shopify=_ids(action.order_id, found))
    if found is None and not quietly and step.settled():
        await step.move(
            ActionState.failed, error=ActionError(code="not_created", detail="Shopify shows no such return.")
        )
    return found


async def _done(step: Step, processed: ReturnSeen) -> None:
    await step.move(ActionState.succeeded, shopify=_ids(step.action.order_id, processed), error=None)


def _ids(order_id: str, created: ReturnSeen) -> dict[str, object]:
    return {
        "order_id": order_id,
        "return_id": created.return_id,
        "return_name": created.name,
        "exchange_line_item_ids": [line.line_id for line in created.exchange_lines],
    }
