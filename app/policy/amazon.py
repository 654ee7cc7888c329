"""An Amazon marketplace's return policy as a seller must apply it: the platform owns the return.

One model for every marketplace (`data/amazon-us.yaml`, `data/amazon-ca.yaml`): where Amazon.ca
differs from Amazon.com (who pays for the label, when the seller refunds) the difference is data.
Nothing here reads a merchant policy, so no store setting can loosen Amazon's rules.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.domain import (
    Classification,
    CurrencyCode,
    Fault,
    Fulfillment,
    Market,
    Money,
    Order,
    PolicyOwner,
    PolicyResult,
    Reason,
    RefundTrigger,
    Resolution,
    RestockingFee,
    ReturnRequest,
)
from app.policy.dates import HolidayCalendar, days_from, local_date, resolve_delivery, return_window
from app.policy.evaluation import Evaluation, Trace, explain_missing
from app.policy.language import Locales
from app.policy.policy_file import ExactPercent
from app.policy.returned import describe, format_money, requested_lines, value_of

# Replies that depend on where the return stands rather than on its reason.
LATE, INELIGIBLE, NOT_SHIPPED = "late", "ineligible", "not_shipped"


class ReasonRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fault: Fault
    reply: str = Field(pattern=r"^[a-z_]+$", description="The reply scenario for an in-policy return.")


class LatePeriod(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    days: int = Field(gt=0)
    restocking_fee_percent: ExactPercent


class ReturnLabel(BaseModel):
    """Who pays for the return label Amazon gives the buyer, and where the return may go."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prepaid: bool = Field(description="Amazon's default label is prepaid for the buyer.")
    return_address_country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    must_seller_fault: list[str] = Field(
        default_factory=list, description="Added to `must` on a seller-fault return the seller ships."
    )


class AmazonPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)
    version: str
    name: str = Field(description="The marketplace as the explanation names it (Amazon US, Amazon.ca).")
    template_set: str
    compliance: str = Field(description="The id of the communication rules its replies are checked by.")
    marketplace_id: str | None = None
    currency: CurrencyCode
    timezone: str
    locales: Locales
    window_days: int = Field(gt=0)
    holidays: HolidayCalendar
    late_period: LatePeriod
    # carrier_scan: Amazon's prepaid-label program refunds on the carrier's first scan;
    # return_received: the seller refunds once the item is back.
    seller_fulfilled_refund: Literal[RefundTrigger.carrier_scan, RefundTrigger.return_received]
    return_label: ReturnLabel | None = None
    reasons: dict[Reason, ReasonRule]
    must: list[str]
    must_seller_fulfilled: list[str]
    must_not: list[str]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone") from exc
        return value

    @field_validator("reasons")
    @classmethod
    def _every_reason(cls, reasons: dict[Reason, ReasonRule]) -> dict[Reason, ReasonRule]:
        missing = [reason.value for reason in Reason if reason not in reasons]
        if missing:
            raise ValueError(f"no rule for reason(s) {', '.join(missing)}")
        return reasons

    @property
    def reply_scenarios(self) -> set[str]:
        return {rule.reply for rule in self.reasons.values()} | {LATE, INELIGIBLE, NOT_SHIPPED}


def evaluate_amazon(
    policy: AmazonPolicy, order: Order, request: ReturnRequest, market: Market, as_of: datetime
) -> Evaluation:
    trace = Trace(f"{policy.id}@{policy.version}")
    explain_missing(order, trace)
    requested = requested_lines(order, request)
    value = value_of(requested.lines, order.currency)
    trace.add("amazon.returned_value", describe(requested, value))

    rule = policy.reasons[request.reason]
    payer = "seller" if rule.fault is Fault.seller else "customer"
    trace.add(
        "amazon.fault",
        f"{request.reason}: {rule.fault} fault, "
        + ("the seller pays return shipping" if payer == "seller" else "return shipping may be deducted"),
    )

    eligible, late, window_ends, scenario = False, False, None, NOT_SHIPPED
    delivery = resolve_delivery(order, market)
    if delivery is None:
        trace.add("amazon.not_shipped", "not shipped yet: nothing to return, cancel the order instead")
    else:
        trace.add("amazon.delivery", delivery.describe())
        placed = local_date(order.placed_at, market.zone)
        holidays = policy.holidays.periods_around(placed)
        window = return_window(delivery.local_date, placed, policy.window_days, holidays)
        window_ends = window.ends
        trace.add(
            "amazon.window", f"{policy.window_days} days from delivery: {window.standard_end.isoformat()}"
        )
        if window.holiday is not None:
            trace.add(
                "amazon.holiday_window",
                f"placed {placed.isoformat()}, in the holiday period {window.holiday.describe()}: "
                + (
                    f"window extended to {window.ends.isoformat()}"
                    if window.extended
                    else f"its deadline {window.holiday.return_by.isoformat()} is earlier, no extension"
                ),
            )
        today = local_date(as_of, market.zone)
        late_ends = days_from(window.ends, policy.late_period.days)
        if today <= window.ends:
            eligible, scenario = True, rule.reply
            trace.add(
                "amazon.in_policy", f"{today.isoformat()} is within the window: Amazon authorises the return"
            )
        elif today <= late_ends:
            eligible, late, scenario = True, True, LATE
            trace.add(
                "amazon.late_period",
                f"{today.isoformat()} is {(today - window.ends).days} day(s) after the window, within the "
                f"{policy.late_period.days}-day late period (to {late_ends.isoformat()}): out of policy, "
                "the seller authorises by hand",
            )
        else:
            scenario = INELIGIBLE
            trace.add(
                "amazon.expired",
                f"{today.isoformat()} is after the late period (to {late_ends.isoformat()}): not returnable",
            )

    fba = order.fulfillment is Fulfillment.amazon
    if fba:
        trace.add("amazon.fba", "fulfilled by Amazon: Amazon authorises, grades and refunds; no seller fee")
    else:
        trace.add("amazon.seller_fulfilled", _SELLER_FULFILLED[policy.seller_fulfilled_refund])
    label_must = [] if fba else _return_label(policy, rule.fault, trace)
    fee = _restocking_fee(policy, value, charge=late and not fba)
    if fee.allowed:
        trace.add(
            "amazon.restocking_fee",
            f"late return: up to {fee.max_percent}% of {format_money(value)} = {format_money(fee.amount)}",
        )

    result = PolicyResult(
        id=policy.id,
        version=policy.version,
        owner=PolicyOwner.platform,
        eligible=eligible,
        return_window_ends=window_ends,
        restocking_fee=fee,
        refund_trigger=RefundTrigger.amazon if fba else policy.seller_fulfilled_refund,
        return_required=True,
        returned_value=value,
        store_credit_bonus_percent=Decimal(0),
        # Amazon's own return flow is the only resolution: never an exchange or credit outside it.
        resolution_options=[Resolution.refund] if eligible else [],
        must=[*policy.must, *([] if fba else policy.must_seller_fulfilled), *label_must],
        must_not=list(policy.must_not),
        return_shipping_paid_by=payer,
    )
    return Evaluation(
        result=result,
        classification=Classification.compliance_return,
        fault=rule.fault,
        scenario=scenario,
        template_set=policy.template_set,
        item_titles=tuple(returned.line.title for returned in requested.lines),
        final_sale=False,
        steps=tuple(trace.steps),
    )


_SELLER_FULFILLED = {
    RefundTrigger.carrier_scan: (
        "seller-fulfilled: refund on the carrier's scan, within 2 business days of the return arriving"
    ),
    RefundTrigger.return_received: "seller-fulfilled: the seller refunds once the returned item arrives",
}


def _return_label(policy: AmazonPolicy, fault: Fault, trace: Trace) -> list[str]:
    """The label rules of a seller-fulfilled return; what they add to `must`."""
    label = policy.return_label
    if label is None:
        return []
    where = (
        f"; the return address must be in {label.return_address_country}"
        if label.return_address_country
        else ""
    )
    if label.prepaid:
        trace.add("amazon.return_label", f"{policy.name}'s return label is prepaid{where}")
        return []
    if fault is Fault.seller:
        trace.add(
            "amazon.return_label",
            f"{policy.name}'s default label is not prepaid: on a seller-fault return the seller uploads a "
            f"prepaid label{where}",
        )
        return list(label.must_seller_fault)
    trace.add(
        "amazon.return_label",
        f"{policy.name}'s default label is not prepaid: the buyer pays the return shipping{where}",
    )
    return []


def _restocking_fee(policy: AmazonPolicy, value: Money, *, charge: bool) -> RestockingFee:
    # In policy Amazon allows no fee for an item in original condition; grading a used item happens later,
    # by hand, with photos. Only the late period carries a fee the decision can state up front, where the
    # marketplace's rules give one.
    if not charge or not policy.late_period.restocking_fee_percent:
        return RestockingFee(allowed=False, max_percent=Decimal(0), amount=Money.zero(value.currency))
    percent = policy.late_period.restocking_fee_percent
    return RestockingFee(allowed=True, max_percent=percent, amount=value.percent(percent).rounded())
