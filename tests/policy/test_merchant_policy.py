"""The Shopify CA default policy: Toronto dates, final sale, returnless, fees, defects, review."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from app.domain import Classification, Fault, Money, PolicyOwner, RefundTrigger, Resolution

from .builders import Decide, line, result_of, rules, shopify_order, toronto

RETENTION_FIRST = [Resolution.exchange, Resolution.store_credit, Resolution.refund]
AS_OF = toronto(2026, 10, 20, 12, 0)
# Delivered at 03:00Z on Oct 10: still Oct 9 in Toronto, so the window's last day is Nov 8.
LATE_EVENING_DELIVERY = datetime(2026, 10, 10, 3, 0, tzinfo=UTC)


def cad(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="CAD")


def test_customer_fault_return_offers_retention_first_with_fee_and_bonus(decide: Decide) -> None:
    verdict = decide(shopify_order(), AS_OF, reason="size_or_fit")

    policy = verdict.policy
    assert (policy.id, policy.version, policy.owner) == (
        "shopify-ca-default",
        "2026.11",
        PolicyOwner.merchant,
    )
    assert verdict.classification is Classification.retention_refund
    assert verdict.fault is Fault.customer
    assert policy.eligible is True
    assert policy.resolution_options == RETENTION_FIRST
    assert policy.store_credit_bonus_percent == 10
    assert policy.restocking_fee.allowed is True
    assert policy.restocking_fee.max_percent == 15
    assert policy.restocking_fee.amount == cad("2.78")  # 15% of 18.50 = 2.775, half-up
    assert policy.return_required is True
    assert policy.refund_trigger is RefundTrigger.return_received
    assert policy.review is False
    assert verdict.template.id == "shopify-ca/eligible/en-CA"


def test_restocking_fee_rounds_half_up_not_to_even(decide: Decide) -> None:
    verdict = decide(shopify_order(lines=[line("TEE-01", "18.30 CAD")]), AS_OF, reason="no_longer_needed")

    assert verdict.policy.restocking_fee.amount == cad("2.75")  # 2.745: half-even would give 2.74


def test_seller_fault_carries_no_fee(decide: Decide) -> None:
    verdict = decide(shopify_order(lines=[line("KET-01", "89.00 CAD")]), AS_OF, reason="defective")

    assert verdict.policy.restocking_fee.allowed is False
    assert verdict.policy.restocking_fee.amount == cad("0.00")
    assert verdict.policy.resolution_options == RETENTION_FIRST


def test_window_last_day_is_taken_in_toronto(decide: Decide) -> None:
    order = shopify_order(delivered_at=LATE_EVENING_DELIVERY)

    last_day = decide(order, toronto(2026, 11, 8, 23, 59), reason="size_or_fit")  # Nov 9 in UTC
    day_after = decide(order, toronto(2026, 11, 9, 0, 0), reason="size_or_fit")

    assert last_day.policy.return_window_ends == date(2026, 11, 8)
    assert last_day.policy.eligible is True
    assert day_after.policy.eligible is False
    assert day_after.policy.resolution_options == []
    assert day_after.policy.store_credit_bonus_percent == 0
    assert day_after.policy.restocking_fee.allowed is False
    assert "shopify.outside_window" in rules(day_after)
    assert day_after.template.id == "shopify-ca/ineligible/en-CA"


@pytest.mark.parametrize(
    ("placed_at", "window_ends"),
    [
        (toronto(2026, 10, 31, 23, 30), date(2026, 12, 3)),  # Nov 1 03:30 in UTC
        (toronto(2026, 11, 1, 0, 10), date(2027, 1, 31)),
    ],
)
def test_holiday_period_starts_on_the_local_date(
    decide: Decide, placed_at: datetime, window_ends: date
) -> None:
    order = shopify_order(placed_at=placed_at, delivered_at=toronto(2026, 11, 3, 12, 0))

    verdict = decide(order, toronto(2026, 11, 5, 9, 0))

    assert verdict.policy.return_window_ends == window_ends
    assert ("shopify.holiday_window" in rules(verdict)) is (window_ends == date(2027, 1, 31))


def test_holiday_period_recurs_every_year(decide: Decide) -> None:
    order = shopify_order(placed_at=toronto(2031, 12, 20, 9, 0), delivered_at=toronto(2031, 12, 22, 9, 0))

    assert decide(order, toronto(2031, 12, 23, 9, 0)).policy.return_window_ends == date(2032, 1, 31)


@pytest.mark.parametrize(
    ("as_of", "eligible"),
    [(toronto(2027, 1, 7, 23, 59), True), (toronto(2027, 1, 8, 0, 0), False)],  # day 90 and day 91
)
def test_seller_fault_stays_eligible_90_days_from_delivery(
    decide: Decide, as_of: datetime, eligible: bool
) -> None:
    order = shopify_order(delivered_at=LATE_EVENING_DELIVERY)  # Oct 9 in Toronto

    verdict = decide(order, as_of, reason="defective")

    assert verdict.policy.eligible is eligible
    assert verdict.policy.return_window_ends == date(2026, 11, 8)  # the window itself does not move
    assert ("shopify.seller_fault_window" in rules(verdict)) is eligible


def test_customer_fault_does_not_get_the_90_days(decide: Decide) -> None:
    verdict = decide(shopify_order(), toronto(2026, 11, 20, 9, 0), reason="no_longer_needed")

    assert verdict.policy.eligible is False


def test_final_sale_is_not_returnable_for_a_customer_fault(decide: Decide) -> None:
    order = shopify_order(lines=[line("DRS-01", "120.00 CAD", tags=["final-sale"])])

    verdict = decide(order, AS_OF, reason="size_or_fit")

    assert verdict.policy.eligible is False
    assert verdict.policy.resolution_options == []
    assert "final sale, not returnable" in result_of(verdict, "shopify.final_sale")
    assert verdict.template.id == "shopify-ca/ineligible/en-CA"
    assert "final sale" in verdict.template.body


def test_final_sale_is_returnable_for_a_seller_fault(decide: Decide) -> None:
    order = shopify_order(lines=[line("DRS-01", "120.00 CAD", tags=["Final-Sale"])])

    verdict = decide(order, AS_OF, reason="defective")

    assert verdict.policy.eligible is True
    assert verdict.policy.returned_value == cad("120.00")
    assert "returnable because the fault is the seller's" in result_of(verdict, "shopify.final_sale_defect")


def test_final_sale_lines_leave_the_others_returnable(decide: Decide) -> None:
    order = shopify_order(
        lines=[line("DRS-01", "120.00 CAD", tags=["final-sale"]), line("TEE-01", "30.00 CAD")]
    )

    verdict = decide(order, AS_OF, reason="size_or_fit")

    assert verdict.policy.eligible is True
    assert verdict.policy.returned_value == cad("30.00")
    assert verdict.policy.restocking_fee.amount == cad("4.50")
    # Only what can come back is counted and offered; the reply says what stays with the customer.
    assert result_of(verdict, "shopify.returned_value") == "TEE-01 x1: 30.00 CAD"
    assert "your order #1001 (Tee-01)" in verdict.template.body
    assert "Please note that Drs-01 cannot be returned under our return policy" in verdict.template.body


def test_nothing_is_said_to_be_kept_when_every_line_can_come_back(decide: Decide) -> None:
    order = shopify_order(
        lines=[line("DRS-01", "120.00 CAD", tags=["final-sale"]), line("TEE-01", "30.00 CAD")]
    )

    defect = decide(order, AS_OF, reason="defective")  # a defect is never final sale

    assert defect.policy.returned_value == cad("150.00")
    assert "cannot be returned" not in defect.template.body


@pytest.mark.parametrize(("price", "returnless"), [("20.00", True), ("20.01", False)])
def test_returnless_at_or_under_20_cad_for_a_seller_fault(
    decide: Decide, price: str, returnless: bool
) -> None:
    verdict = decide(shopify_order(lines=[line("MUG-01", f"{price} CAD")]), AS_OF, reason="damaged")

    assert verdict.policy.return_required is not returnless
    expected_trigger = RefundTrigger.immediate if returnless else RefundTrigger.return_received
    assert verdict.policy.refund_trigger is expected_trigger
    assert verdict.template.id == (
        "shopify-ca/returnless/en-CA" if returnless else "shopify-ca/eligible/en-CA"
    )


def test_no_returnless_for_a_customer_fault(decide: Decide) -> None:
    verdict = decide(shopify_order(lines=[line("MUG-01", "5.00 CAD")]), AS_OF, reason="no_longer_needed")

    assert verdict.policy.return_required is True
    assert "shopify.returnless" not in rules(verdict)


@pytest.mark.parametrize(("price", "review"), [("300.00", False), ("300.01", True)])
def test_review_over_300_cad(decide: Decide, price: str, review: bool) -> None:
    verdict = decide(shopify_order(lines=[line("COAT-01", f"{price} CAD")]), AS_OF, reason="size_or_fit")

    assert verdict.policy.review is review
    assert ("shopify.review.high_value" in rules(verdict)) is review
    assert verdict.queue.name == ("shopify-review" if review else "shopify-retention")
    assert verdict.template.id == ("shopify-ca/review/en-CA" if review else "shopify-ca/eligible/en-CA")


def days_before(as_of: datetime, *days: float) -> list[datetime]:
    return [as_of - timedelta(days=day) for day in days]


@pytest.mark.parametrize(
    ("earlier_returns", "review"),
    [
        (days_before(AS_OF, 10, 200), False),
        (days_before(AS_OF, 10, 200, 364), True),
        (days_before(AS_OF, 10, 200, 365), True),  # exactly 365 days before: still within
        (days_before(AS_OF, 10, 200, 366), False),
        (days_before(AS_OF, 10, 200, -1), False),  # created after as_of: not there yet on replay
    ],
)
def test_review_for_three_returns_in_365_days(
    decide: Decide, earlier_returns: list[datetime], review: bool
) -> None:
    verdict = decide(shopify_order(earlier_returns_at=earlier_returns), AS_OF, reason="size_or_fit")

    assert verdict.policy.review is review
    assert ("shopify.review.frequent_returner" in rules(verdict)) is review


def test_order_not_shipped(decide: Decide) -> None:
    verdict = decide(shopify_order(delivered_at=None, delivered_at_source=None), AS_OF)

    assert verdict.policy.eligible is False
    assert verdict.policy.return_window_ends is None
    assert verdict.policy.resolution_options == []
    assert verdict.template.id == "shopify-ca/not_shipped/en-CA"


def test_every_step_names_the_merchant_policy(decide: Decide) -> None:
    verdict = decide(shopify_order(), AS_OF, reason="size_or_fit")

    policies = {step.rule: step.policy for step in verdict.explanation}
    assert policies.pop("routing.queue") == "routing@2026.11"
    assert set(policies.values()) == {"shopify-ca-default@2026.11"}
    assert rules(verdict)[-3:] == ["locale", "routing.queue", "reply.template"]


def test_each_rule_that_applied_is_in_the_explanation_in_file_order(decide: Decide) -> None:
    order = shopify_order(
        lines=[line("DRS-01", "9.00 CAD", tags=["final-sale"])],
        earlier_returns_at=days_before(AS_OF, 1, 2, 3),
    )

    verdict = decide(order, toronto(2026, 12, 20, 12, 0), reason="defective")  # day 76 from delivery

    assert rules(verdict)[:9] == [
        "shopify.fault",
        "shopify.final_sale_defect",
        "shopify.returned_value",
        "shopify.delivery",
        "shopify.window",
        "shopify.outside_window",
        "shopify.seller_fault_window",
        "shopify.returnless",
        "shopify.review.frequent_returner",
    ]
    assert result_of(verdict, "shopify.seller_fault_window") == (
        "seller fault; 76 days since delivery (at most 90); past the window ending 2026-11-04: eligible "
        "(defective goods are taken back after the window)"
    )
    assert result_of(verdict, "shopify.returnless") == (
        "seller fault; returned value 9.00 CAD at or under 20.00: returnless: the customer keeps the item"
    )


def test_thresholds_are_never_compared_across_currencies(decide: Decide) -> None:
    # A store whose shop currency is USD, under a policy whose amounts are CAD: 500.00 USD is not
    # "over 300.00 CAD", nor is 10.00 USD "at most 20.00 CAD".
    expensive = [line("PARKA-01", "500.00", title="Parka")]
    cheap = [line("PIN-01", "10.00", title="Pin")]
    in_usd = {"currency": "USD"}

    high = decide(shopify_order(lines=expensive, **in_usd), toronto(2026, 10, 20, 12, 0))
    low = decide(
        shopify_order(lines=cheap, **in_usd),
        toronto(2026, 10, 20, 12, 0),
        reason="defective",
    )

    assert high.policy.review is False
    assert "shopify.review.high_value" not in rules(high)
    assert result_of(high, "shopify.currency") == (
        "the shop's currency is USD, the policy's amounts are in CAD: no amount threshold is compared"
    )
    assert low.policy.return_required is True  # no returnless under a threshold it cannot read
    assert high.policy.returned_value == Money(amount=Decimal("500.00"), currency="USD")
