"""Amazon.com's return policy as a seller must apply it: the platform owns the return.

Nothing here reads a merchant policy: Amazon's rules come only from `data/amazon-us.yaml`, so no store
setting can loosen them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.domain import (
    Classification,
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
from app.policy.dates import HolidayPeriod, days_from, local_date, resolve_delivery, return_window
from app.policy.evaluation import Evaluation, Trace
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


class AmazonUsPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    version: str
    template_set: str
    window_days: int = Field(gt=0)
    holiday_periods: list[HolidayPeriod]
    late_period: LatePeriod
    reasons: dict[Reason, ReasonRule]
    must: list[str]
    must_seller_fulfilled: list[str]
    must_not: list[str]

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


def evaluate_amazon_us(
    policy: AmazonUsPolicy, order: Order, request: ReturnRequest, market: Market, as_of: datetime
) -> Evaluation:
    trace = Trace(f"{policy.id}@{policy.version}")
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
        window = return_window(delivery.local_date, placed, policy.window_days, policy.holiday_periods)
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
        trace.add(
            "amazon.seller_fulfilled",
            "seller-fulfilled: refund on the carrier's scan, within 2 business days of the return arriving",
        )
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
        refund_trigger=RefundTrigger.amazon if fba else RefundTrigger.carrier_scan,
        return_required=True,
        returned_value=value,
        store_credit_bonus_percent=Decimal(0),
        # Amazon's own return flow is the only resolution: never an exchange or credit outside it.
        resolution_options=[Resolution.refund] if eligible else [],
        must=[*policy.must, *([] if fba else policy.must_seller_fulfilled)],
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


def _restocking_fee(policy: AmazonUsPolicy, value: Money, *, charge: bool) -> RestockingFee:
    # In policy Amazon allows no fee for an item in original condition; grading a used item happens later,
    # by hand, with photos. Only the late period carries a fee the decision can state up front.
    if not charge:
        return RestockingFee(allowed=False, max_percent=Decimal(0), amount=Money.zero(value.currency))
    percent = policy.late_period.restocking_fee_percent
    return RestockingFee(allowed=True, max_percent=percent, amount=value.percent(percent).rounded())
