"""A merchant policy's rules: conditions on the return, and the outcomes they set when they all hold.

Rules are data (YAML). A rule matches when every condition it names holds; a condition it does not name
holds always. Each check says in words what it found, so the explanation shows why a rule applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.domain import Fault, Money, OrderLine, Reason, Resolution
from app.policy.policy_file import Days, ExactDecimal, ExactPercent
from app.policy.returned import format_money

RULE_ID = r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*$"


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DayRange(_Data):
    """Whole days between two local dates: `at_least` and `at_most` are both inclusive."""

    at_least: int | None = Field(default=None, ge=0)
    at_most: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.at_least is None and self.at_most is None:
            raise ValueError("give at_least, at_most or both")
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError("at_least is after at_most")
        return self

    def holds(self, days: int) -> bool:
        return (self.at_least is None or days >= self.at_least) and (
            self.at_most is None or days <= self.at_most
        )

    def describe(self) -> str:
        if self.at_least is not None and self.at_most is not None:
            return f"{self.at_least} to {self.at_most}"
        return f"at least {self.at_least}" if self.at_least is not None else f"at most {self.at_most}"


class ValueRange(_Data):
    """The returned value, in the shop's currency: `over`/`under` exclusive, `at_least`/`at_most` not."""

    over: ExactDecimal | None = None
    at_least: ExactDecimal | None = None
    under: ExactDecimal | None = None
    at_most: ExactDecimal | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if all(bound is None for bound in (self.over, self.at_least, self.under, self.at_most)):
            raise ValueError("give over, at_least, under or at_most")
        return self

    def holds(self, amount: Decimal) -> bool:
        return (
            (self.over is None or amount > self.over)
            and (self.at_least is None or amount >= self.at_least)
            and (self.under is None or amount < self.under)
            and (self.at_most is None or amount <= self.at_most)
        )

    def describe(self) -> str:
        bounds = [("over", self.over), ("at least", self.at_least), ("under", self.under)]
        bounds.append(("at or under", self.at_most))
        return " and ".join(f"{word} {bound}" for word, bound in bounds if bound is not None)


class EarlierReturns(_Data):
    at_least: int = Field(gt=0)
    within_days: Days = 365


@dataclass(frozen=True)
class ReturnFacts:
    """What a condition may look at: the return as the policy has worked it out so far."""

    reason: Reason
    fault: Fault
    today: date  # as_of, in the channel's time zone
    as_of: datetime
    placed: date
    shipped: date | None
    delivered: date | None
    window_ends: date | None
    lines: Sequence[OrderLine]  # the lines that can come back
    value: Money
    amounts_in: str  # the currency of the policy's amounts: a value in another is never compared
    ship_to_country: str | None
    ship_to_region: str | None
    earlier_returns_at: Sequence[datetime]


def _folded(values: Sequence[str]) -> set[str]:
    return {value.casefold() for value in values}


class Conditions(_Data):
    """Every condition named must hold. Lists match any of their values (case-insensitive for text)."""

    reason: list[Reason] | None = Field(default=None, min_length=1)
    fault: Fault | None = None
    days_since_delivery: DayRange | None = None
    days_since_fulfillment: DayRange | None = None
    days_since_order: DayRange | None = None
    in_window: bool | None = Field(default=None, description="Whether as_of is within the window so far.")
    product_type: list[str] | None = Field(default=None, min_length=1)
    tag: list[str] | None = Field(default=None, min_length=1)
    sku: list[str] | None = Field(default=None, min_length=1)
    returned_value: ValueRange | None = None
    ship_to_country: list[str] | None = Field(default=None, min_length=1)
    ship_to_province: list[str] | None = Field(default=None, min_length=1)
    earlier_returns: EarlierReturns | None = None

    @property
    def about_lines(self) -> bool:
        return any(kind is not None for kind in (self.product_type, self.tag, self.sku))

    def line_matches(self, line: OrderLine) -> bool:
        return (
            (self.product_type is None or (line.product_type or "").casefold() in _folded(self.product_type))
            and (self.tag is None or bool(_folded(self.tag) & _folded(line.tags)))
            and (self.sku is None or (line.sku or "").casefold() in _folded(self.sku))
        )

    def check(self, facts: ReturnFacts, lines: Sequence[OrderLine] | None = None) -> list[str] | None:
        """What held, in words, when every condition holds; `None` when one does not.

        Line conditions look at `lines` (default: the lines that can come back): any one matching is enough.
        """
        found: list[str] = []
        if self.reason is not None:
            if facts.reason not in self.reason:
                return None
            found.append(f"reason {facts.reason}")
        if self.fault is not None:
            if facts.fault is not self.fault:
                return None
            found.append(f"{facts.fault} fault")
        for name, since, days in (
            ("delivery", facts.delivered, self.days_since_delivery),
            ("fulfillment", facts.shipped, self.days_since_fulfillment),
            ("order", facts.placed, self.days_since_order),
        ):
            if days is None:
                continue
            if since is None or not days.holds((facts.today - since).days):
                return None
            found.append(f"{(facts.today - since).days} days since {name} ({days.describe()})")
        if self.in_window is not None:
            inside = facts.window_ends is not None and facts.today <= facts.window_ends
            if facts.window_ends is None or inside is not self.in_window:
                return None
            where = "within" if inside else "past"
            found.append(f"{where} the window ending {facts.window_ends.isoformat()}")
        if self.about_lines:
            matching = [line for line in (facts.lines if lines is None else lines) if self.line_matches(line)]
            if not matching:
                return None
            found.append(", ".join(line.sku or line.title for line in matching))
        if self.returned_value is not None:
            if facts.value.currency != facts.amounts_in or not self.returned_value.holds(facts.value.amount):
                return None
            found.append(f"returned value {format_money(facts.value)} {self.returned_value.describe()}")
        if self.ship_to_country is not None:
            country = (facts.ship_to_country or "").upper()
            if country not in {value.upper() for value in self.ship_to_country}:
                return None
            found.append(f"ships to {country}")
        if self.ship_to_province is not None:
            region = (facts.ship_to_region or "").upper()
            if region not in {value.upper() for value in self.ship_to_province}:
                return None
            found.append(f"ships to province {region}")
        if self.earlier_returns is not None:
            rule = self.earlier_returns
            since = facts.as_of - timedelta(days=rule.within_days)
            # Returns created after `as_of` did not exist yet when the decision is replayed for that moment.
            recent = sum(1 for created in facts.earlier_returns_at if since <= created <= facts.as_of)
            if recent < rule.at_least:
                return None
            found.append(f"{recent} earlier returns in the {rule.within_days} days to as_of")
        return found


class Outcome(_Data):
    """What a matching rule sets; what it leaves out stays as earlier rules (or the defaults) set it."""

    eligible: bool | None = None
    window_days: Days | None = Field(default=None, description="The window, from the delivery date.")
    restocking_fee_percent: ExactPercent | None = None
    resolution_options: list[Resolution] | None = Field(default=None, min_length=1)
    store_credit_bonus_percent: ExactPercent | None = None
    returnless: bool | None = None
    review: bool | None = None

    @model_validator(mode="after")
    def _sets_something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("a rule's `then` sets at least one outcome")
        return self

    def describe(self) -> str:
        parts: list[str] = []
        if self.window_days is not None:
            parts.append(f"window {self.window_days} days from delivery")
        if self.eligible is not None:
            parts.append("eligible" if self.eligible else "not eligible")
        if self.resolution_options is not None:
            parts.append(f"options {', '.join(self.resolution_options)}")
        if self.restocking_fee_percent is not None:
            parts.append(f"restocking fee {self.restocking_fee_percent}% on a refund")
        if self.store_credit_bonus_percent is not None:
            parts.append(f"store credit bonus {self.store_credit_bonus_percent}%")
        if self.returnless is not None:
            parts.append("returnless: the customer keeps the item" if self.returnless else "it comes back")
        if self.review is not None:
            parts.append("review before acting" if self.review else "no review")
        return "; ".join(parts)


class Defaults(_Data):
    """The outcome before any rule applies."""

    resolution_options: list[Resolution] = Field(min_length=1)
    store_credit_bonus_percent: ExactPercent = Decimal(0)
    restocking_fee_percent: ExactPercent = Decimal(0)
    returnless: bool = False
    review: bool = False


class Rule(_Data):
    id: str = Field(pattern=RULE_ID, max_length=100)
    note: str | None = Field(default=None, max_length=300, description="Why the rule exists, for agents.")
    when: Conditions = Conditions()
    then: Outcome


class LineOutcome(_Data):
    returnable: bool


class LineRule(_Data):
    """Decides, line by line, whether a requested line can come back (e.g. final sale)."""

    id: str = Field(pattern=RULE_ID, max_length=100)
    note: str | None = Field(default=None, max_length=300)
    when: Conditions
    then: LineOutcome

    @model_validator(mode="after")
    def _about_lines(self) -> Self:
        when = self.when
        if not when.about_lines:
            raise ValueError("a line rule names product_type, tag or sku")
        if when.returned_value is not None or when.in_window is not None:
            # The value and the window depend on which lines come back: a line rule cannot use them.
            raise ValueError("a line rule cannot use returned_value or in_window")
        return self
