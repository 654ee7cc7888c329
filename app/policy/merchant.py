"""A merchant's own return policy (Shopify): the store decides, and wants to keep the customer.

The policy is a YAML file per channel, validated by `MerchantPolicy`. Amounts are in the shop's currency,
the one `Order.currency` carries, in which every threshold compares.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.channels import Channel
from app.domain import (
    Classification,
    Fault,
    Locale,
    Money,
    Order,
    OrderLine,
    PolicyOwner,
    PolicyResult,
    Reason,
    RefundTrigger,
    Resolution,
    RestockingFee,
    ReturnRequest,
)
from app.policy.dates import AnnualHoliday, days_from, local_date, resolve_delivery, return_window
from app.policy.evaluation import Evaluation, Trace
from app.policy.policy_file import ExactDecimal, ExactPercent
from app.policy.returned import RequestedLines, describe, format_money, requested_lines, value_of

# Reply scenarios every merchant template set provides.
ELIGIBLE, RETURNLESS, REVIEW, INELIGIBLE, NOT_SHIPPED = (
    "eligible",
    "returnless",
    "review",
    "ineligible",
    "not_shipped",
)
MERCHANT_SCENARIOS = (ELIGIBLE, RETURNLESS, REVIEW, INELIGIBLE, NOT_SHIPPED)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Window(_Section):
    days: int = Field(gt=0)
    holiday: AnnualHoliday | None = None
    seller_fault_days: int = Field(gt=0, description="How long a seller-fault return stays eligible.")


class FinalSale(_Section):
    tags: list[str] = Field(default_factory=list)
    product_types: list[str] = Field(default_factory=list)

    def covers(self, line: OrderLine) -> bool:
        tags = {tag.casefold() for tag in self.tags}
        types = {kind.casefold() for kind in self.product_types}
        return (
            bool(tags & {tag.casefold() for tag in line.tags})
            or (line.product_type or "").casefold() in types
        )


class Returnless(_Section):
    max_value: ExactDecimal  # seller-fault returns worth at most this are refunded without the item


class Review(_Section):
    value_over: ExactDecimal | None = None
    earlier_returns: int | None = Field(default=None, gt=0)
    earlier_returns_within_days: int = Field(default=365, gt=0)


class RegionLocale(_Section):
    country: str
    region: str
    locale: Locale


class Locales(_Section):
    offered: list[Locale] = Field(min_length=1)
    default: Locale
    by_region: list[RegionLocale] = Field(default_factory=list)

    @model_validator(mode="after")
    def _only_offered(self) -> Self:
        used = {self.default, *(rule.locale for rule in self.by_region)}
        unknown = sorted(locale.value for locale in used if locale not in self.offered)
        if unknown:
            raise ValueError(f"{', '.join(unknown)} used but not in offered")
        return self


class MerchantPolicy(_Section):
    id: str
    version: str
    template_set: str
    window: Window
    reasons: dict[Reason, Fault]
    final_sale: FinalSale = FinalSale()
    resolution_options: list[Resolution] = Field(min_length=1)
    store_credit_bonus_percent: ExactPercent = Decimal(0)
    restocking_fee_percent: dict[Fault, ExactPercent]
    returnless: Returnless | None = None
    review: Review = Review()
    locales: Locales
    must: list[str] = Field(default_factory=list)
    must_not: list[str] = Field(default_factory=list)

    @field_validator("reasons")
    @classmethod
    def _every_reason(cls, reasons: dict[Reason, Fault]) -> dict[Reason, Fault]:
        missing = [reason.value for reason in Reason if reason not in reasons]
        if missing:
            raise ValueError(f"no fault given for reason(s) {', '.join(missing)}")
        return reasons

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"


def evaluate_merchant(
    policy: MerchantPolicy, order: Order, request: ReturnRequest, channel: Channel, as_of: datetime
) -> Evaluation:
    trace = Trace(policy.ref)
    requested = requested_lines(order, request)
    fault = policy.reasons[request.reason]
    trace.add("shopify.fault", f"{request.reason}: {fault} fault")

    returnable = requested.lines
    final_sale = [returned for returned in requested.lines if policy.final_sale.covers(returned.line)]
    if final_sale:
        skus = ", ".join(returned.line.sku or returned.line.title for returned in final_sale)
        if fault is Fault.customer:
            returnable = [
                returned for returned in requested.lines if not policy.final_sale.covers(returned.line)
            ]
            trace.add("shopify.final_sale", f"{skus}: final sale, not returnable for a customer-fault reason")
        else:
            trace.add(
                "shopify.final_sale", f"{skus}: final sale, returnable because the fault is the seller's"
            )
    value = value_of(returnable, order.currency)
    trace.add(
        "shopify.returned_value",
        describe(RequestedLines(returnable), value) if returnable else "no returnable lines",
    )

    eligible, window_ends = False, None
    delivery = resolve_delivery(order, channel)
    if delivery is None:
        trace.add("shopify.not_shipped", "not shipped yet: nothing to return, cancel the order instead")
    else:
        trace.add("shopify.delivery", delivery.describe())
        placed = local_date(order.placed_at, channel.zone)
        holidays = policy.window.holiday.periods_around(placed) if policy.window.holiday else []
        window = return_window(delivery.local_date, placed, policy.window.days, holidays)
        window_ends = window.ends
        trace.add(
            "shopify.window", f"{policy.window.days} days from delivery: {window.standard_end.isoformat()}"
        )
        if window.holiday is not None and window.extended:
            trace.add(
                "shopify.holiday_window",
                f"placed {placed.isoformat()}, in the holiday period {window.holiday.describe()}: "
                f"window extended to {window.ends.isoformat()}",
            )
        today = local_date(as_of, channel.zone)
        seller_fault_ends = days_from(delivery.local_date, policy.window.seller_fault_days)
        if not returnable:
            trace.add("shopify.ineligible", "every requested line is final sale")
        elif today <= window.ends:
            eligible = True
            trace.add("shopify.in_window", f"{today.isoformat()} is within the window")
        elif fault is Fault.seller and today <= seller_fault_ends:
            eligible = True
            trace.add(
                "shopify.seller_fault_window",
                f"{today.isoformat()} is past the window but a seller-fault return is taken back until "
                f"{seller_fault_ends.isoformat()} ({policy.window.seller_fault_days} days from delivery)",
            )
        else:
            trace.add(
                "shopify.outside_window",
                f"{today.isoformat()} is past the window ending {window.ends.isoformat()}",
            )

    returnless = eligible and _returnless(policy, fault, value, trace)
    fee = _restocking_fee(policy, fault, value, eligible=eligible, trace=trace)
    bonus = policy.store_credit_bonus_percent if eligible else Decimal(0)
    if eligible and bonus and Resolution.store_credit in policy.resolution_options:
        trace.add("shopify.store_credit_bonus", f"store credit carries a {bonus}% bonus")
    review = _review(policy, order, value, as_of, trace)

    result = PolicyResult(
        id=policy.id,
        version=policy.version,
        owner=PolicyOwner.merchant,
        eligible=eligible,
        return_window_ends=window_ends,
        restocking_fee=fee,
        refund_trigger=RefundTrigger.immediate if returnless else RefundTrigger.return_received,
        return_required=not returnless,
        returned_value=value,
        store_credit_bonus_percent=bonus,
        resolution_options=list(policy.resolution_options) if eligible else [],
        must=list(policy.must),
        must_not=list(policy.must_not),
        review=review,
    )
    if delivery is None:
        scenario = NOT_SHIPPED
    elif not eligible:
        scenario = INELIGIBLE
    else:
        scenario = REVIEW if review else RETURNLESS if returnless else ELIGIBLE
    return Evaluation(
        result=result,
        classification=Classification.retention_refund,
        fault=fault,
        scenario=scenario,
        template_set=policy.template_set,
        # The reply names what can come back; when nothing can, what was asked for.
        item_titles=tuple(returned.line.title for returned in returnable or requested.lines),
        final_sale=bool(requested.lines) and not returnable,
        steps=tuple(trace.steps),
    )


def _returnless(policy: MerchantPolicy, fault: Fault, value: Money, trace: Trace) -> bool:
    if policy.returnless is None or fault is not Fault.seller:
        return False
    limit = policy.returnless.max_value
    if value.amount <= limit:
        trace.add(
            "shopify.returnless", f"{format_money(value)} at or under {limit}: the customer keeps the item"
        )
        return True
    trace.add("shopify.returnless", f"{format_money(value)} over {limit}: the item comes back")
    return False


def _restocking_fee(
    policy: MerchantPolicy, fault: Fault, value: Money, *, eligible: bool, trace: Trace
) -> RestockingFee:
    percent = policy.restocking_fee_percent.get(fault, Decimal(0)) if eligible else Decimal(0)
    if not percent:
        return RestockingFee(allowed=False, max_percent=Decimal(0), amount=Money.zero(value.currency))
    amount = value.percent(percent).rounded()
    # Shown as what a refund would carry; an exchange or store credit carries none.
    trace.add(
        "shopify.restocking_fee", f"{percent}% of {format_money(value)} on a refund: {format_money(amount)}"
    )
    return RestockingFee(allowed=True, max_percent=percent, amount=amount)


def _review(policy: MerchantPolicy, order: Order, value: Money, as_of: datetime, trace: Trace) -> bool:
    review = False
    limit = policy.review.value_over
    if limit is not None and value.amount > limit:
        review = True
        trace.add("shopify.review.high_value", f"{format_money(value)} is over {limit}")
    if policy.review.earlier_returns is not None:
        since = as_of - timedelta(days=policy.review.earlier_returns_within_days)
        # Returns created after `as_of` did not exist yet when the decision is replayed for that moment.
        recent = sum(1 for created in order.earlier_returns_at if since <= created <= as_of)
        if recent >= policy.review.earlier_returns:
            review = True
            trace.add(
                "shopify.review.frequent_returner",
                f"{recent} earlier returns in the {policy.review.earlier_returns_within_days} days to as_of",
            )
    return review
