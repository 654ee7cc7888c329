"""Amazon US: windows in Los Angeles time, the yearly holiday rule and its announced years, the late period,
FBA and the agent's rules."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from app.domain import (
    Classification,
    Fault,
    Fulfillment,
    Locale,
    Money,
    PolicyOwner,
    RefundTrigger,
    Resolution,
)
from app.policy import PolicyBook, PolicyFileError
from app.policy.book import built_in_policy_file

from .builders import Decide, amazon_order, la, line, result_of, rules

AMAZON_US_FILE = built_in_policy_file("amazon-us")
TWO_BUSINESS_DAYS = "refund within 2 business days of receiving the return"

# Delivered at 03:00Z on Oct 10: still Oct 9 in Los Angeles, so the window's last day is Nov 8.
LATE_EVENING_DELIVERY = datetime(2026, 10, 10, 3, 0, tzinfo=UTC)


def test_in_policy_return_is_eligible_without_fee(decide: Decide) -> None:
    verdict = decide(amazon_order(), la(2026, 10, 20, 12, 0), reason="damaged")

    policy = verdict.policy
    assert (policy.id, policy.version, policy.owner) == ("amazon-us", "2026.11", PolicyOwner.platform)
    assert verdict.classification is Classification.compliance_return
    assert policy.eligible is True
    assert policy.return_window_ends == date(2026, 11, 4)
    assert policy.restocking_fee.allowed is False
    assert policy.restocking_fee.max_percent == 0
    assert policy.restocking_fee.amount == Money(amount=Decimal("0.00"), currency="USD")
    assert policy.resolution_options == [Resolution.refund]
    assert policy.refund_trigger is RefundTrigger.carrier_scan
    assert policy.return_required is True
    assert policy.store_credit_bonus_percent == 0
    assert policy.returned_value == Money(amount=Decimal("59.99"), currency="USD")


def test_window_last_day_is_taken_in_los_angeles(decide: Decide) -> None:
    order = amazon_order(delivered_at=LATE_EVENING_DELIVERY)

    last_day = decide(order, la(2026, 11, 8, 23, 59))  # already Nov 9 in UTC
    day_after = decide(order, la(2026, 11, 9, 0, 0))

    assert last_day.policy.return_window_ends == date(2026, 11, 8)
    assert result_of(last_day, "amazon.delivery") == "delivered 2026-10-09 (promised)"
    assert "amazon.in_policy" in rules(last_day)
    assert last_day.policy.restocking_fee.allowed is False
    assert "amazon.late_period" in rules(day_after)
    assert day_after.policy.restocking_fee.allowed is True


def test_late_period_day_30_is_eligible_with_a_20_percent_fee(decide: Decide) -> None:
    order = amazon_order(delivered_at=LATE_EVENING_DELIVERY)

    verdict = decide(order, la(2026, 12, 8, 23, 0))  # window ended Nov 8: day 30 after it

    assert verdict.policy.eligible is True
    assert verdict.policy.return_window_ends == date(2026, 11, 8)  # the window does not move
    assert verdict.policy.restocking_fee.allowed is True
    assert verdict.policy.restocking_fee.max_percent == 20
    assert verdict.policy.restocking_fee.amount == Money(amount=Decimal("12.00"), currency="USD")
    assert verdict.policy.resolution_options == [Resolution.refund]
    assert "30 day(s) after the window" in result_of(verdict, "amazon.late_period")
    assert verdict.template.id == "amazon-us/late/en-US"


def test_late_period_day_31_is_not_returnable(decide: Decide) -> None:
    verdict = decide(amazon_order(delivered_at=LATE_EVENING_DELIVERY), la(2026, 12, 9, 0, 1))

    assert verdict.policy.eligible is False
    assert verdict.policy.resolution_options == []
    assert verdict.policy.restocking_fee.allowed is False
    assert "amazon.expired" in rules(verdict)
    assert verdict.template.id == "amazon-us/ineligible/en-US"


def test_late_fee_is_20_percent_of_the_returned_lines_only(decide: Decide) -> None:
    order = amazon_order(
        lines=[line("KET-01", "59.99", title="Kettle"), line("MUG-02", "12.34", 3, title="Mug")]
    )

    verdict = decide(order, la(2026, 11, 20, 12, 0), items=[{"sku": "MUG-02", "quantity": 2}])

    assert verdict.policy.returned_value.amount == Decimal("24.68")
    assert verdict.policy.restocking_fee.amount.amount == Decimal("4.94")  # 4.936, rounded half-up


@pytest.mark.parametrize(
    ("placed_at", "window_ends"),
    [
        (la(2026, 10, 31, 23, 30), date(2026, 12, 3)),  # Nov 1 06:30 in UTC, but Oct 31 where it was bought
        (la(2026, 11, 1, 0, 10), date(2027, 1, 31)),
    ],
)
def test_holiday_period_starts_on_the_local_date(
    decide: Decide, placed_at: datetime, window_ends: date
) -> None:
    verdict = decide(
        amazon_order(placed_at=placed_at, delivered_at=la(2026, 11, 3, 12, 0)), la(2026, 11, 5, 9, 0)
    )

    assert verdict.policy.return_window_ends == window_ends
    assert ("amazon.holiday_window" in rules(verdict)) is (window_ends == date(2027, 1, 31))


def test_holiday_deadline_every_year_from_the_rule_and_the_announced_years(decide: Decide) -> None:
    placed_2025 = decide(
        amazon_order(placed_at=la(2025, 12, 10, 9, 0), delivered_at=la(2025, 12, 12, 9, 0)),
        la(2025, 12, 20, 9, 0),
    )
    # No year after 2025 is listed: the yearly rule (placed Nov 1 - Dec 31, back by Jan 31) holds.
    placed_2027 = decide(
        amazon_order(placed_at=la(2027, 12, 10, 9, 0), delivered_at=la(2027, 12, 12, 9, 0)),
        la(2027, 12, 20, 9, 0),
    )
    placed_2031 = decide(
        amazon_order(placed_at=la(2031, 11, 1, 0, 5), delivered_at=la(2031, 11, 4, 9, 0)),
        la(2031, 11, 20, 9, 0),
    )

    assert placed_2025.policy.return_window_ends == date(2026, 1, 31)
    assert placed_2027.policy.return_window_ends == date(2028, 1, 31)
    assert placed_2031.policy.return_window_ends == date(2032, 1, 31)
    assert result_of(placed_2027, "amazon.holiday_window") == (
        "placed 2027-12-10, in the holiday period 2027-11-01 to 2027-12-31: window extended to 2028-01-31"
    )


def test_a_year_announced_in_seller_central_replaces_the_rule_for_that_year(tmp_path: Path) -> None:
    text = AMAZON_US_FILE.read_text(encoding="utf-8")
    announced = (
        "    - placed_from: 2027-10-15\n      placed_to: 2027-12-24\n      return_by: 2028-01-15\n"
        "      note: announced in Seller Central\n"
    )
    assert "  years:\n" in text
    path = tmp_path / "amazon-us.yaml"
    path.write_text(text.replace("  years:\n", "  years:\n" + announced), encoding="utf-8")
    decide = Decide(PolicyBook.load({}, amazon_files=[path]))

    october = decide(
        amazon_order(placed_at=la(2027, 10, 20, 9, 0), delivered_at=la(2027, 10, 22, 9, 0)),
        la(2027, 11, 1, 9, 0),
    )
    christmas_eve = decide(
        amazon_order(placed_at=la(2027, 12, 24, 9, 0), delivered_at=la(2027, 12, 26, 9, 0)),
        la(2027, 12, 30, 9, 0),
    )
    after_it = decide(
        amazon_order(placed_at=la(2027, 12, 28, 9, 0), delivered_at=la(2027, 12, 30, 9, 0)),
        la(2027, 12, 30, 9, 0),
    )
    next_year = decide(
        amazon_order(placed_at=la(2028, 12, 10, 9, 0), delivered_at=la(2028, 12, 12, 9, 0)),
        la(2028, 12, 20, 9, 0),
    )

    assert october.policy.return_window_ends == date(2028, 1, 15)
    assert christmas_eve.policy.return_window_ends == date(2028, 1, 25)  # 30 days is later
    assert after_it.policy.return_window_ends == date(2028, 1, 29)  # not in 2027's announced period
    assert next_year.policy.return_window_ends == date(2029, 1, 31)  # the rule again


def test_two_announced_periods_for_one_year_are_refused(tmp_path: Path) -> None:
    text = AMAZON_US_FILE.read_text(encoding="utf-8")
    twice = "    - {placed_from: 2025-11-15, placed_to: 2025-12-31, return_by: 2026-01-31}\n"
    path = tmp_path / "amazon-us.yaml"
    path.write_text(text.replace("  years:\n", "  years:\n" + twice), encoding="utf-8")

    with pytest.raises(PolicyFileError, match="more than one period starting in 2025"):
        PolicyBook.load({}, amazon_files=[path])


def test_holiday_deadline_applies_only_when_later(decide: Decide) -> None:
    order = amazon_order(placed_at=la(2026, 12, 31, 9, 0), delivered_at=la(2027, 1, 5, 9, 0))

    verdict = decide(order, la(2027, 1, 10, 9, 0))

    assert verdict.policy.return_window_ends == date(2027, 2, 4)
    assert "no extension" in result_of(verdict, "amazon.holiday_window")


def test_fba_never_allows_a_fee_even_in_the_late_period(decide: Decide) -> None:
    order = amazon_order(fulfillment=Fulfillment.amazon, delivered_at=LATE_EVENING_DELIVERY)

    verdict = decide(order, la(2026, 11, 20, 12, 0))

    assert verdict.policy.eligible is True
    assert verdict.policy.restocking_fee.allowed is False
    assert verdict.policy.restocking_fee.amount.amount == 0
    assert verdict.policy.refund_trigger is RefundTrigger.amazon
    assert TWO_BUSINESS_DAYS not in verdict.policy.must
    assert "amazon.fba" in rules(verdict)
    assert "amazon.restocking_fee" not in rules(verdict)


def test_seller_fulfilled_must_refund_within_two_business_days(decide: Decide) -> None:
    verdict = decide(amazon_order(), la(2026, 10, 20, 12, 0))

    assert TWO_BUSINESS_DAYS in verdict.policy.must
    assert "answer within 24 hours in Buyer-Seller Messaging" in verdict.policy.must
    assert "asking for feedback or reviews" in verdict.policy.must_not
    assert "a refund, exchange, store credit or discount outside Amazon" in verdict.policy.must_not


@pytest.mark.parametrize(
    ("reason", "fault", "payer", "template"),
    [
        ("damaged", Fault.seller, "seller", "amazon-us/damaged/en-US"),
        ("defective", Fault.seller, "seller", "amazon-us/damaged/en-US"),
        ("wrong_item", Fault.seller, "seller", "amazon-us/wrong_item/en-US"),
        ("arrived_late", Fault.seller, "seller", "amazon-us/seller_fault/en-US"),
        ("size_or_fit", Fault.customer, "customer", "amazon-us/customer_fault/en-US"),
        ("other", Fault.customer, "customer", "amazon-us/customer_fault/en-US"),
    ],
)
def test_fault_decides_who_pays_return_shipping(
    decide: Decide, reason: str, fault: Fault, payer: str, template: str
) -> None:
    verdict = decide(amazon_order(), la(2026, 10, 20, 12, 0), reason=reason)

    assert verdict.fault is fault
    assert verdict.policy.return_shipping_paid_by == payer
    assert verdict.template.id == template


def test_order_not_shipped_is_cancelled_not_returned(decide: Decide) -> None:
    verdict = decide(amazon_order(delivered_at=None, delivered_at_source=None), la(2026, 10, 3, 12, 0))

    assert verdict.policy.eligible is False
    assert verdict.policy.return_window_ends is None
    assert verdict.policy.resolution_options == []
    assert "cancel" in result_of(verdict, "amazon.not_shipped")
    assert verdict.template.id == "amazon-us/not_shipped/en-US"


def test_shipped_without_delivery_time_uses_the_transit_estimate(decide: Decide) -> None:
    order = amazon_order(delivered_at=None, delivered_at_source=None, shipped_at=la(2026, 10, 2, 10, 0))

    verdict = decide(order, la(2026, 10, 20, 12, 0))

    assert verdict.policy.return_window_ends == date(2026, 11, 6)  # shipped Oct 2 + 5 days + 30 days
    assert result_of(verdict, "amazon.delivery") == "delivered 2026-10-07 (estimated)"


def test_amazon_replies_in_en_us_whatever_the_request_asks(decide: Decide) -> None:
    verdict = decide(amazon_order(), la(2026, 10, 20, 12, 0), locale="fr-CA")

    assert verdict.locale is Locale.en_us
    assert verdict.template.locale is Locale.en_us
    assert "fr-CA asked" in result_of(verdict, "locale")


def test_every_step_names_the_amazon_policy_in_order(decide: Decide) -> None:
    verdict = decide(
        amazon_order(placed_at=la(2026, 11, 20, 10, 0), delivered_at=la(2026, 11, 24, 10, 0)),
        la(2026, 12, 3, 7, 0),
    )

    policies = {step.rule: step.policy for step in verdict.explanation}
    assert {policies.pop("routing.a_to_z_risk"), policies.pop("routing.queue")} == {"routing@2026.11"}
    assert set(policies.values()) == {"amazon-us@2026.11"}
    assert rules(verdict) == [
        "amazon.returned_value",
        "amazon.fault",
        "amazon.delivery",
        "amazon.window",
        "amazon.holiday_window",
        "amazon.in_policy",
        "amazon.seller_fulfilled",
        "locale",
        "routing.a_to_z_risk",
        "routing.queue",
        "reply.template",
    ]
    assert result_of(verdict, "amazon.holiday_window").endswith("window extended to 2027-01-31")
