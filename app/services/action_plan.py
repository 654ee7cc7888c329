"""What an action will send, worked out from the stored decision and the agent's request. No I/O.

The decision holds the order as it was decided on (line GIDs, shop and presentment prices) and the
policy's answer (resolution options, restocking fee, store credit bonus); an action never grants more.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints

from app.connectors.shopify import RefundTransaction, SuggestedRefund
from app.domain import Money, Order, Percent, PolicyResult, Resolution, ReturnItem, ReturnRequest, minor_unit
from app.errors import ActionNotAllowed, UpstreamBadResponse, ValidationProblem
from app.policy.returned import requested_lines

Note = Annotated[str, StringConstraints(max_length=1000)]
VARIANT_GID = re.compile(r"^(?:gid://shopify/ProductVariant/)?(\d{1,20})$")


def _former_name_of_items(schema: dict[str, Any]) -> None:
    """The document also shows `lines`, the contract's first name for `items`, which is still read."""
    items = schema["properties"]["items"]
    schema["properties"]["lines"] = {
        **items,
        "title": "Lines",
        "deprecated": True,
        "description": "The former name of `items`, still accepted; give one or the other.",
    }


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The returned lines are `items` here as in the route's request; `lines` is still read.
Items = Annotated[
    list[ReturnItem] | None,
    Field(
        default=None,
        max_length=500,
        validation_alias=AliasChoices("items", "lines"),
        description="The lines by SKU; default: the lines of the decision. Formerly `lines`, still accepted.",
        examples=[[{"sku": "KET-01", "quantity": 1}]],
    ),
]


class RefundBody(_Body):
    model_config = ConfigDict(json_schema_extra=_former_name_of_items)

    items: Items
    restocking_fee_percent: Percent | None = Field(
        default=None,
        description="At most the policy's; default: the fee the decision shows.",
        examples=["10"],
    )
    notify_customer: bool = Field(
        default=True, description="Shopify emails the customer about the refund.", examples=[True]
    )
    note: Note | None = Field(
        default=None,
        description="Kept on the refund in Shopify.",
        examples=["Cracked lid, photo in T-88213."],
    )


class ExchangeItem(_Body):
    variant_id: Annotated[str, StringConstraints(pattern=VARIANT_GID.pattern)] = Field(
        description="A ProductVariant GID or numeric id.", examples=["gid://shopify/ProductVariant/39072856"]
    )
    quantity: int = Field(default=1, ge=1, le=10_000, description="Units sent in exchange.", examples=[1])


class ExchangeBody(_Body):
    model_config = ConfigDict(json_schema_extra=_former_name_of_items)

    items: Items
    exchange_for: list[ExchangeItem] = Field(
        min_length=1,
        max_length=100,
        description="The variants the customer gets instead.",
        examples=[[{"variant_id": "gid://shopify/ProductVariant/39072856", "quantity": 1}]],
    )


class StoreCreditBody(_Body):
    amount: Money | None = Field(
        default=None,
        description="At most the returned value plus the policy's bonus, in the currency the customer "
        "paid; default: that.",
        examples=[{"amount": "65.99", "currency": "CAD"}],
    )
    note: Note | None = Field(
        default=None, description="Accepted; not sent to Shopify.", examples=["Goodwill credit."]
    )


ActionBody = RefundBody | ExchangeBody | StoreCreditBody
KIND_OF: dict[type[BaseModel], Resolution] = {
    RefundBody: Resolution.refund,
    ExchangeBody: Resolution.exchange,
    StoreCreditBody: Resolution.store_credit,
}


def admit(kind: Resolution, platform: str, policy: PolicyResult, live: bool) -> None:
    """Refuse an action the decision does not allow; nothing is recorded or sent then."""
    if platform != "shopify":
        raise ActionNotAllowed(
            "The platform owns this order's return (Amazon): refunds, exchanges and store credit go "
            "through Amazon's own flow, never through this service."
        )
    if not policy.eligible:
        raise ActionNotAllowed("The decision found the return not eligible: no action can be taken on it.")
    if kind not in policy.resolution_options:
        offered = ", ".join(policy.resolution_options) or "none"
        raise ActionNotAllowed(f"The decision does not offer {kind.value}; it offers: {offered}.")
    if not live:
        raise ActionNotAllowed(
            "The decision was made on a sandbox order: there is no Shopify store to act on. "
            "Configure the channel's credentials and route the return again."
        )


def returned_lines(
    order: Order, stored_request: dict[str, Any], lines: list[ReturnItem] | None
) -> list[tuple[str, int]]:
    """(line GID, quantity) of the lines the action covers: the agent's, else the decision's own."""
    items = lines if lines is not None else stored_request.get("items")
    request = ReturnRequest.model_validate({"order_ref": order.order_ref, "items": items})
    chosen = requested_lines(order, request)
    if chosen.beyond_order:
        skus = ", ".join(sorted(chosen.beyond_order))
        raise ValidationProblem(f"More units than order {order.order_ref} holds: {skus}.")
    if not chosen.lines:
        raise ValidationProblem("The action covers no line of the order.")
    return [(returned.line.line_id, returned.quantity) for returned in chosen.lines]


def restocking_fee_percent(policy: PolicyResult, asked: Decimal | None) -> Decimal:
    fee = policy.restocking_fee
    allowed = fee.max_percent if fee.allowed else Decimal(0)
    if asked is None:
        return allowed
    if asked > allowed:
        raise ValidationProblem(
            f"The restocking fee can be at most {allowed.normalize()}% on this decision.",
            errors=[
                {"loc": ["body", "restocking_fee_percent"], "msg": "above the policy", "type": "too_high"}
            ],
        )
    return asked


def refund_transactions(suggested: SuggestedRefund, fee_percent: Decimal) -> list[RefundTransaction]:
    """The refund, net of the restocking fee, spread over the payments Shopify suggests.

    The suggestion covers the lines and their tax, so refunding each payment's share less the fee
    keeps the fee's share of the tax too (the kept share's tax is not refunded). Each amount is
    rounded down to the minor unit: never more than was paid.
    """
    paid = Money.zero(suggested.amount.currency)
    for transaction in suggested.transactions:
        paid = paid + transaction.amount
    if paid.amount > suggested.amount.amount or not suggested.transactions:
        raise UpstreamBadResponse(
            f"Shopify's suggested refund ({suggested.amount.amount}) does not match its transactions."
        )
    keep = (100 - fee_percent) / 100
    refunds = []
    for transaction in suggested.transactions:
        amount = net_of_fee(transaction.amount, keep)
        if amount.amount > 0:
            refunds.append(RefundTransaction(transaction.gateway, transaction.parent_id, amount))
    return refunds


def net_of_fee(paid: Money, keep: Decimal) -> Money:
    amount = (paid.amount * keep).quantize(minor_unit(paid.currency), rounding=ROUND_DOWN)
    return Money(amount=amount, currency=paid.currency)


def total(transactions: Sequence[RefundTransaction], currency: str) -> Money:
    result = Money.zero(currency)
    for transaction in transactions:
        result = result + transaction.amount
    return result


def store_credit_amount(
    order: Order, lines: Sequence[tuple[str, int]], bonus_percent: Decimal, asked: Money | None
) -> Money:
    """The returned lines' value in the currency the customer paid, plus the policy's bonus."""
    by_id = {line.line_id: line for line in order.lines}
    currency = order.presentment_currency or order.currency
    value = Money.zero(currency)
    for line_id, quantity in lines:
        line = by_id[line_id]
        value = value + (line.presentment_unit_price or line.unit_price).times(quantity)
    ceiling = (value + value.percent(bonus_percent)).rounded()
    if asked is None:
        return ceiling
    if asked.currency != currency or not 0 < asked.amount <= ceiling.amount:
        raise ValidationProblem(
            f"Store credit must be in {currency}, above 0 and at most {ceiling.amount} "
            "(the returned value plus the policy's bonus).",
            errors=[{"loc": ["body", "amount"], "msg": "outside what the policy allows", "type": "range"}],
        )
    return asked.rounded()


def variant_gid(variant_id: str) -> str:
    match = VARIANT_GID.match(variant_id)
    assert match is not None  # the body's pattern checked it
    return f"gid://shopify/ProductVariant/{match.group(1)}"
