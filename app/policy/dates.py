"""Calendar rules: dates in the channel's time zone, "N days from delivery" and holiday periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Annotated, Self
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from app.domain import DeliverySource, Market, Order


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    """The calendar date of `moment` where the channel sells (03:00Z is still yesterday in LA)."""
    return moment.astimezone(zone).date()


def days_from(start: date, days: int) -> date:
    return start + timedelta(days=days)


@dataclass(frozen=True)
class Delivery:
    at: datetime
    local_date: date
    source: DeliverySource | None

    def describe(self) -> str:
        return f"delivered {self.local_date.isoformat()}" + (f" ({self.source})" if self.source else "")


def resolve_delivery(order: Order, market: Market) -> Delivery | None:
    """When the order counts as delivered; `None` when it has not shipped (it is cancelled, not returned)."""
    if order.delivered_at is not None:
        at, source = order.delivered_at, order.delivered_at_source
    elif order.shipped_at is not None:
        # Connectors normally estimate this already; doing it here too keeps a shipped order returnable.
        at, source = order.shipped_at + timedelta(days=market.transit_days), DeliverySource.estimated
    else:
        return None
    return Delivery(at=at, local_date=local_date(at, market.zone), source=source)


class HolidayPeriod(BaseModel):
    """Orders placed (local date) from `placed_from` to `placed_to` are returnable until `return_by`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    placed_from: date
    placed_to: date
    return_by: date
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.placed_from <= self.placed_to < self.return_by:
            raise ValueError("needs placed_from <= placed_to < return_by")
        return self

    def covers(self, placed: date) -> bool:
        return self.placed_from <= placed <= self.placed_to

    def describe(self) -> str:
        return f"{self.placed_from.isoformat()} to {self.placed_to.isoformat()}"


def _month_day(value: str) -> str:
    try:
        date.fromisoformat(f"2001-{value}")  # a year without 29 February: the rule must exist every year
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a month-day like '11-01'") from exc
    return value


MonthDay = Annotated[str, AfterValidator(_month_day)]


class AnnualHoliday(BaseModel):
    """A holiday period every year; `return_by` is its first occurrence after `placed_to`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    placed_from: MonthDay
    placed_to: MonthDay
    return_by: MonthDay

    def for_year(self, year: int) -> HolidayPeriod:
        return _period_of_year(self, year)

    def _period(self, year: int) -> HolidayPeriod:
        start = date.fromisoformat(f"{year}-{self.placed_from}")
        end = date.fromisoformat(f"{year}-{self.placed_to}")
        if end < start:
            end = end.replace(year=year + 1)
        return_by = date.fromisoformat(f"{end.year}-{self.return_by}")
        if return_by <= end:
            return_by = return_by.replace(year=end.year + 1)
        return HolidayPeriod(placed_from=start, placed_to=end, return_by=return_by)

    def periods_around(self, placed: date) -> list[HolidayPeriod]:
        # A period may straddle New Year, so the one that started the year before can still cover `placed`.
        return [self.for_year(placed.year - 1), self.for_year(placed.year)]


@cache
def _period_of_year(rule: AnnualHoliday, year: int) -> HolidayPeriod:
    # Policies live as long as the process and a decision asks for two years: worked out once each.
    return rule._period(year)


class HolidayCalendar(BaseModel):
    """Holiday periods: a rule for every year, and a year's own period where the platform announced one.

    A period in `years` takes the place of the yearly rule for the year it starts in: Amazon announces
    each year's dates in Seller Central, and until it does the rule stands for that year.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    every_year: AnnualHoliday | None = None
    years: list[HolidayPeriod] = []

    @model_validator(mode="after")
    def _one_period_a_year(self) -> Self:
        starts = [period.placed_from.year for period in self.years]
        twice = sorted({year for year in starts if starts.count(year) > 1})
        if twice:
            raise ValueError(f"more than one period starting in {', '.join(map(str, twice))}")
        return self

    def periods_around(self, placed: date) -> list[HolidayPeriod]:
        """The periods that may cover an order placed on `placed` (this year's and last year's)."""
        wanted = (placed.year - 1, placed.year)
        announced = {period.placed_from.year: period for period in self.years}
        periods = [announced[year] for year in wanted if year in announced]
        if self.every_year is not None:
            periods += [self.every_year.for_year(year) for year in wanted if year not in announced]
        return periods


@dataclass(frozen=True)
class ReturnWindow:
    standard_end: date  # delivery date + N days
    holiday: HolidayPeriod | None  # the holiday period the order was placed in, if any
    ends: date  # the later of the two: the last day a return may be started

    @property
    def extended(self) -> bool:
        return self.ends > self.standard_end


def return_window(delivered: date, placed: date, days: int, holidays: list[HolidayPeriod]) -> ReturnWindow:
    standard_end = days_from(delivered, days)
    holiday = next((period for period in holidays if period.covers(placed)), None)
    ends = max(standard_end, holiday.return_by) if holiday else standard_end
    return ReturnWindow(standard_end=standard_end, holiday=holiday, ends=ends)
