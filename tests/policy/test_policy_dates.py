"""Calendar rules: local dates, holiday periods that recur or straddle New Year, the later deadline."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from app.domain import DeliverySource
from app.policy.dates import AnnualHoliday, HolidayPeriod, local_date, resolve_delivery, return_window

from .builders import AMAZON_US, LA, amazon_order, la


def test_local_date_is_the_channel_zone_date() -> None:
    assert local_date(datetime(2026, 10, 10, 3, 0, tzinfo=UTC), LA) == date(2026, 10, 9)
    assert local_date(datetime(2026, 10, 10, 7, 0, tzinfo=UTC), LA) == date(2026, 10, 10)


def test_annual_holiday_for_a_year() -> None:
    holiday = AnnualHoliday(placed_from="11-01", placed_to="12-31", return_by="01-31")

    assert holiday.for_year(2026) == HolidayPeriod(
        placed_from=date(2026, 11, 1), placed_to=date(2026, 12, 31), return_by=date(2027, 1, 31)
    )


def test_annual_holiday_straddling_new_year_covers_january() -> None:
    holiday = AnnualHoliday(placed_from="12-15", placed_to="01-15", return_by="02-15")

    periods = holiday.periods_around(date(2027, 1, 10))

    covering = [period for period in periods if period.covers(date(2027, 1, 10))]
    assert covering == [
        HolidayPeriod(
            placed_from=date(2026, 12, 15), placed_to=date(2027, 1, 15), return_by=date(2027, 2, 15)
        )
    ]


@pytest.mark.parametrize("month_day", ["02-29", "13-01", "11-31", "1101"])
def test_month_day_must_exist_every_year(month_day: str) -> None:
    with pytest.raises(ValidationError, match="month-day"):
        AnnualHoliday(placed_from=month_day, placed_to="12-31", return_by="01-31")


def test_holiday_period_must_end_before_its_deadline() -> None:
    with pytest.raises(ValidationError, match="placed_from <= placed_to < return_by"):
        HolidayPeriod(
            placed_from=date(2026, 11, 1), placed_to=date(2026, 12, 31), return_by=date(2026, 12, 1)
        )


def test_window_is_the_later_of_the_two_deadlines() -> None:
    holiday = HolidayPeriod(
        placed_from=date(2026, 11, 1), placed_to=date(2026, 12, 31), return_by=date(2027, 1, 31)
    )

    early = return_window(date(2026, 11, 10), date(2026, 11, 5), 30, [holiday])
    late = return_window(date(2027, 1, 5), date(2026, 12, 30), 30, [holiday])

    assert (early.ends, early.extended) == (date(2027, 1, 31), True)
    assert (late.ends, late.extended, late.holiday) == (date(2027, 2, 4), False, holiday)


def test_delivery_falls_back_to_the_ship_time_plus_transit() -> None:
    order = amazon_order(delivered_at=None, delivered_at_source=None, shipped_at=la(2026, 10, 2, 23, 0))

    delivery = resolve_delivery(order, AMAZON_US)

    assert delivery is not None
    assert (delivery.local_date, delivery.source) == (date(2026, 10, 7), DeliverySource.estimated)
    assert resolve_delivery(amazon_order(delivered_at=None, delivered_at_source=None), AMAZON_US) is None
