"""A merchant's own return policy (Shopify): the store decides, and wants to keep the customer.

The policy is a YAML file per channel, validated by `MerchantPolicy`. Amounts are in the shop's currency,
the one `Order.currency` carries (Shopify's shopMoney), in which every threshold compares; a policy that
names its `currency` compares no threshold with an order in another one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.domain import (
    Classification,
    CurrencyCode,
    Fault,
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
from app.policy.dates import AnnualHoliday, local_date, resolve_delivery, return_window
from app.policy.evaluation import Evaluation, Trace, explain_missing
from app.policy.language import Locales
from app.policy.merchant_rules import Defaults, LineRule, Outcome, ReturnFacts, Rule
from app.policy.policy_file import Days
from app.policy.returned import (
    RequestedLines,
    ReturnedLine,
    describe,
    format_money,
    requested_lines,
    value_of,
)

# Reply scenarios every merchant template set provides.
ELIGIBLE, RETURNLESS, REVIEW, INELIGIBLE, NOT_SHIPPED = (
    "eligible",
    "returnless",
    "review",
    "ineligible",
    "not_shipped",
)
MERCHANT_SCENARIOS = (ELIGIBLE, RETURNLESS, REVIEW, INELIGIBLE, NOT_SHIPPED)
# A store's policy has a few dozen rules at most; each is checked for every return, and a replay checks
# them all for every stored decision.
MAX_RULES = 200


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Window(_Section):
    days: Days = Field(description="From the local delivery date; the last day is inclusive.")
    holiday: AnnualHoliday | None = None


class MerchantPolicy(_Section):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)
    version: str = Field(min_length=1, max_length=50)
    template_set: str
    currency: CurrencyCode | None = Field(
        default=None, description="The currency of the policy's amounts; absent: the shop's, whatever it is."
    )
    reasons: dict[Reason, Fault]
    window: Window
    defaults: Defaults
    lines: list[LineRule] = Field(
        default_factory=list, max_length=MAX_RULES, description="Which requested lines can come back."
    )
    rules: list[Rule] = Field(
        default_factory=list, max_length=MAX_RULES, description="Applied in order; a later rule wins."
    )
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

    @field_validator("lines", "rules")
    @classmethod
    def _distinct_rule_ids(cls, rules: list[LineRule] | list[Rule]) -> list[LineRule] | list[Rule]:
        ids = [rule.id for rule in rules]
        for index, rule_id in enumerate(ids):
            if rule_id in BUILT_IN_STEPS:
                raise ValueError(f"[{index}] id {rule_id!r} is a built-in step of the explanation")
            if rule_id in ids[:index]:
                raise ValueError(f"[{index}] id {rule_id!r} is taken by [{ids.index(rule_id)}]")
        return rules

    @model_validator(mode="after")
    def _lines_and_rules_apart(self) -> Self:
        shared = sorted({rule.id for rule in self.lines} & {rule.id for rule in self.rules})
        if shared:
            raise ValueError(f"a line rule and a rule share the id {', '.join(shared)}")
        return self

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"


# What the evaluation itself writes in the explanation; a rule's id cannot take one of these names.
BUILT_IN_STEPS = frozenset(
    {
        "fault",
        "returned_value",
        "not_shipped",
        "delivery",
        "window",
        "holiday_window",
        "in_window",
        "outside_window",
        "ineligible",
        "restocking_fee",
        "store_credit_bonus",
        "currency",
    }
)


@dataclass
class _State:
    """The outcome as the rules build it, starting from the policy's defaults."""

    eligible: bool
    window_days: int
    window_ends: date | None
    options: list[Resolution]
    fee_percent: Decimal
    bonus_percent: Decimal
    returnless: bool
    review: bool

    def apply(self, outcome: Outcome) -> None:
        if outcome.resolution_options is not None:
            self.options = list(outcome.resolution_options)
        if outcome.restocking_fee_percent is not None:
            self.fee_percent = outcome.restocking_fee_percent
        if outcome.store_credit_bonus_percent is not None:
            self.bonus_percent = outcome.store_credit_bonus_percent
        if outcome.returnless is not None:
            self.returnless = outcome.returnless
        if outcome.review is not None:
            self.review = outcome.review
        if outcome.eligible is not None:
            self.eligible = outcome.eligible


def evaluate_merchant(
    policy: MerchantPolicy, order: Order, request: ReturnRequest, market: Market, as_of: datetime
) -> Evaluation:
    """Defaults, then line rules, then rules in order; then the limits no rule can lift.

    Those limits: an order not shipped, or a return with no line that can come back, is not eligible;
    only an eligible return carries options, a fee, a bonus or returnless; a seller-fault return
    never carries a restocking fee.
    """
    trace = Trace(policy.ref)
    explain_missing(order, trace)
    requested = requested_lines(order, request)
    fault = policy.reasons[request.reason]
    trace.add("shopify.fault", f"{request.reason}: {fault} fault")

    delivery = resolve_delivery(order, market)
    facts = ReturnFacts(
        reason=request.reason,
        fault=fault,
        today=local_date(as_of, market.zone),
        as_of=as_of,
        placed=local_date(order.placed_at, market.zone),
        shipped=local_date(order.shipped_at, market.zone) if order.shipped_at else None,
        delivered=delivery.local_date if delivery else None,
        window_ends=None,
        lines=[returned.line for returned in requested.lines],
        value=Money.zero(order.currency),
        amounts_in=policy.currency or order.currency,
        ship_to_country=order.ship_to_country,
        ship_to_region=order.ship_to_region,
        earlier_returns_at=order.earlier_returns_at,
    )

    returnable = _returnable_lines(policy, requested, facts, trace)
    value = value_of(returnable, order.currency)
    trace.add(
        "shopify.returned_value",
        describe(RequestedLines(returnable), value) if returnable else "no returnable lines",
    )
    if facts.amounts_in != order.currency:
        trace.add(
            "shopify.currency",
            f"the shop's currency is {order.currency}, the policy's amounts are in {facts.amounts_in}: "
            "no amount threshold is compared",
        )

    defaults = policy.defaults
    state = _State(
        eligible=False,
        window_days=policy.window.days,
        window_ends=None,
        options=list(defaults.resolution_options),
        fee_percent=defaults.restocking_fee_percent,
        bonus_percent=defaults.store_credit_bonus_percent,
        returnless=defaults.returnless,
        review=defaults.review,
    )
    if delivery is None:
        trace.add("shopify.not_shipped", "not shipped yet: nothing to return, cancel the order instead")
    else:
        trace.add("shopify.delivery", delivery.describe())
        _set_window(policy, state, facts, policy.window.days, trace)

    facts = replace(facts, lines=[returned.line for returned in returnable], value=value)
    for rule in policy.rules:
        found = rule.when.check(replace(facts, window_ends=state.window_ends))
        if found is None:
            continue
        if rule.then.window_days is not None and delivery is not None:
            _set_window(policy, state, facts, rule.then.window_days, None)
        state.apply(rule.then)
        trace.add(f"shopify.{rule.id}", _applied(found, rule.then.describe(), rule.note))

    eligible = state.eligible and delivery is not None and bool(returnable)
    if delivery is not None and not returnable:
        trace.add("shopify.ineligible", "no requested line can come back")
    elif delivery is None and state.eligible:
        trace.add("shopify.ineligible", "not shipped: no rule makes it returnable")

    fee = _restocking_fee(state.fee_percent if eligible else Decimal(0), fault, value, trace)
    bonus = state.bonus_percent if eligible and Resolution.store_credit in state.options else Decimal(0)
    if bonus:
        trace.add("shopify.store_credit_bonus", f"store credit carries a {bonus}% bonus")
    returnless = eligible and state.returnless

    result = PolicyResult(
        id=policy.id,
        version=policy.version,
        owner=PolicyOwner.merchant,
        eligible=eligible,
        return_window_ends=state.window_ends,
        restocking_fee=fee,
        refund_trigger=RefundTrigger.immediate if returnless else RefundTrigger.return_received,
        return_required=not returnless,
        returned_value=value,
        store_credit_bonus_percent=bonus,
        resolution_options=state.options if eligible else [],
        must=list(policy.must),
        must_not=list(policy.must_not),
        review=state.review,
    )
    if delivery is None:
        scenario = NOT_SHIPPED
    elif not eligible:
        scenario = INELIGIBLE
    else:
        scenario = REVIEW if state.review else RETURNLESS if returnless else ELIGIBLE
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
        kept_titles=tuple(
            asked.line.title for asked in requested.lines if returnable and asked not in returnable
        ),
    )


def _returnable_lines(
    policy: MerchantPolicy, requested: RequestedLines, facts: ReturnFacts, trace: Trace
) -> list[ReturnedLine]:
    """The requested lines the line rules let come back (a later matching rule wins for its line)."""
    returnable = {index: True for index in range(len(requested.lines))}
    for rule in policy.lines:
        matched: list[ReturnedLine] = []
        for index, returned in enumerate(requested.lines):
            if rule.when.check(facts, [returned.line]) is not None:
                returnable[index] = rule.then.returnable
                matched.append(returned)
        if matched:
            skus = ", ".join(returned.line.sku or returned.line.title for returned in matched)
            verdict = "returnable" if rule.then.returnable else "not returnable"
            trace.add(f"shopify.{rule.id}", f"{skus}: {verdict}" + (f" ({rule.note})" if rule.note else ""))
    return [returned for index, returned in enumerate(requested.lines) if returnable[index]]


def _set_window(
    policy: MerchantPolicy, state: _State, facts: ReturnFacts, days: int, trace: Trace | None
) -> None:
    """The window from the delivery date (a holiday may extend it), and what it says about as_of."""
    assert facts.delivered is not None
    holidays = policy.window.holiday.periods_around(facts.placed) if policy.window.holiday else []
    window = return_window(facts.delivered, facts.placed, days, holidays)
    state.window_days, state.window_ends = days, window.ends
    state.eligible = facts.today <= window.ends
    if trace is None:  # a rule moved the window: its own step says so
        return
    trace.add("shopify.window", f"{days} days from delivery: {window.standard_end.isoformat()}")
    if window.holiday is not None and window.extended:
        trace.add(
            "shopify.holiday_window",
            f"placed {facts.placed.isoformat()}, in the holiday period {window.holiday.describe()}: "
            f"window extended to {window.ends.isoformat()}",
        )
    if state.eligible:
        trace.add("shopify.in_window", f"{facts.today.isoformat()} is within the window")
    else:
        past = f"{facts.today.isoformat()} is past the window ending {window.ends.isoformat()}"
        trace.add("shopify.outside_window", past)


def _applied(found: list[str], outcome: str, note: str | None) -> str:
    text = f"{'; '.join(found) or 'always'}: {outcome}"
    return f"{text} ({note})" if note else text


def _restocking_fee(percent: Decimal, fault: Fault, value: Money, trace: Trace) -> RestockingFee:
    if percent and fault is Fault.seller:
        # The seller's mistake is never the customer's cost, whatever a rule says.
        trace.add("shopify.restocking_fee", "none: the fault is the seller's")
        percent = Decimal(0)
    if not percent:
        return RestockingFee(allowed=False, max_percent=Decimal(0), amount=Money.zero(value.currency))
    amount = value.percent(percent).rounded()
    # Shown as what a refund would carry; an exchange or store credit carries none.
    trace.add(
        "shopify.restocking_fee", f"{percent}% of {format_money(value)} on a refund: {format_money(amount)}"
    )
    return RestockingFee(allowed=True, max_percent=percent, amount=amount)
