"""`refunds/create`: a refund on a Shopify order, made by an action of the service or by hand.

Every refund is recorded once (by its Refund GID), with the units of each line it covered, so the
service knows what Shopify has paid back. One whose note carries an action's marker settles that
action if it was still pending (its answer was lost, say); any other, made in Shopify's admin by
hand, settles the units it covered: no action refunds, credits or exchanges them again.

The amount is what the refund's successful `refund` transactions paid back, in their currency;
pending or failed transactions moved nothing (yet), but the refund still counts as made. Shopify may
send a transaction's `currency` as null (its own sample does): it is then the refund's, which its lines
state (the currency the customer paid in).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import WebhookEvent
from app.domain import Money
from app.services import actions, outcomes
from app.services.action_refund import marked_action
from app.services.webhooks.handlers import Apply, UnusableEvent, shopify_gid


async def prepare(event: WebhookEvent, now: datetime) -> Apply:
    payload = event.payload or {}
    refund_id = _gid("Refund", payload, "id")
    order_id = _gid("Order", payload, "order_id")
    created_at = _created_at(payload, event.occurred_at)
    amount = refunded(payload)
    note = payload.get("note") if isinstance(payload.get("note"), str) else None
    lines = refunded_lines(payload)

    async def apply(session: AsyncSession) -> str:
        recorded = await actions.record_shopify_refund(
            session,
            channel=event.channel,
            order_id=order_id,
            refund_id=refund_id,
            amount=amount,
            created_at=created_at,
            note=note,
            lines=lines,
        )
        if not recorded:
            return f"refund {refund_id} known already"
        action_id = marked_action(note)
        made = f"by action {action_id}" if action_id else "outside the service"
        await outcomes.settle_order(session, event.channel, order_id)
        return f"refund {refund_id} of {amount.amount} {amount.currency} recorded, made {made}"

    return apply


def refunded(payload: dict[str, Any]) -> Money:
    """The money the refund paid back: its successful `refund` transactions."""
    transactions = payload.get("transactions") or []
    if not isinstance(transactions, list) or not all(isinstance(t, dict) for t in transactions):
        raise UnusableEvent("the refund's transactions are not a list of objects")
    currency = next((t["currency"] for t in transactions if isinstance(t.get("currency"), str)), None)
    currency = currency or _line_currency(payload)
    if currency is None:
        raise UnusableEvent("the refund states no currency (no transaction, no line amount)")
    total = Decimal(0)
    for transaction in transactions:
        if transaction.get("kind") != "refund" or transaction.get("status") != "success":
            continue
        # An explicit null is no other currency: it is the refund's own.
        if (transaction.get("currency") or currency) != currency:
            raise UnusableEvent("the refund's transactions are in more than one currency")
        try:
            amount = Decimal(str(transaction.get("amount")))
        except InvalidOperation:
            amount = Decimal("NaN")
        if not amount.is_finite() or amount < 0:
            raise UnusableEvent(f"a refund transaction has no amount: {transaction.get('amount')!r}")
        total += amount
    try:
        return Money(amount=total, currency=currency).rounded()
    except ValidationError as error:
        raise UnusableEvent(f"the refund's amount is not money: {error.error_count()} errors") from error


def refunded_lines(payload: dict[str, Any]) -> list[tuple[str, int]] | None:
    """(LineItem GID, units) of each line the refund covered; None when the payload does not say."""
    if "refund_line_items" not in payload:
        return None
    items = payload["refund_line_items"] or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UnusableEvent("the refund's line items are not a list of objects")
    lines = []
    for item in items:
        quantity = item.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 <= quantity <= 1_000_000:
            raise UnusableEvent("a refund line item has no quantity")
        if quantity:
            lines.append((_gid("LineItem", item, "line_item_id"), quantity))
    return lines


def _line_currency(payload: dict[str, Any]) -> str | None:
    """The currency the refund's lines (else its duties or shipping) are stated in, as paid."""
    sets = [
        (line.get("subtotal_set") if isinstance(line, dict) else None)
        for line in payload.get("refund_line_items") or []
    ]
    sets.append(payload.get("total_duties_set"))
    sets += [
        (line.get("subtotal_amount_set") if isinstance(line, dict) else None)
        for line in payload.get("refund_shipping_lines") or []
    ]
    for money_set in sets:
        money = money_set.get("presentment_money") if isinstance(money_set, dict) else None
        if isinstance(money, dict) and isinstance(money.get("currency_code"), str):
            return str(money["currency_code"])
    return None


def _gid(kind: str, resource: dict[str, Any], number_key: str) -> str:
    gid = shopify_gid(kind, resource, number_key)
    if gid is None:
        raise UnusableEvent(f"the refund has no numeric {number_key}")
    return gid


def _created_at(payload: dict[str, Any], fallback: datetime) -> datetime:
    value = payload.get("created_at")
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return fallback
        if moment.tzinfo is not None:
            return moment
    return fallback
