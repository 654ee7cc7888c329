"""Rules that hold for every order and request, checked with generated ones."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import Fulfillment, Order, Platform, Reason, Resolution, ReturnRequest
from app.policy import PolicyBook, Verdict
from app.settings import DEFAULT_MERCHANT_POLICY

from .builders import AMAZON_US, SHOPIFY_CA, amazon_order, la, line, request_for, shopify_order

BOOK = PolicyBook.load({"shopify_ca": DEFAULT_MERCHANT_POLICY})
PLACED = la(2026, 9, 1, 10, 0)

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("2000.00"), places=2)
order_lines = st.lists(st.tuples(prices, st.integers(1, 5), st.booleans()), min_size=1, max_size=4)


@st.composite
def cases(draw: st.DrawFn, platform: Platform) -> tuple[Order, ReturnRequest, Any]:
    drawn = draw(order_lines)
    suffix = " CAD" if platform is Platform.shopify else ""
    lines = [
        line(f"SKU-{index}", f"{price}{suffix}", quantity, tags=["final-sale"] if final else [])
        for index, (price, quantity, final) in enumerate(drawn)
    ]
    delivered = None if draw(st.integers(0, 9)) == 0 else PLACED + timedelta(days=draw(st.integers(1, 10)))
    fields: dict[str, Any] = {"lines": lines, "placed_at": PLACED, "delivered_at": delivered}
    if delivered is None:
        fields["delivered_at_source"] = None
    if platform is Platform.amazon:
        fields["fulfillment"] = draw(st.sampled_from([Fulfillment.amazon, Fulfillment.merchant]))
        order = amazon_order(**fields)
    else:
        fields["earlier_returns_at"] = [
            PLACED - timedelta(days=d) for d in draw(st.lists(st.integers(0, 500)))
        ]
        order = shopify_order(**fields)
    skus = st.sampled_from([f"SKU-{index}" for index in range(len(lines))])
    items = draw(
        st.none() | st.lists(st.fixed_dictionaries({"sku": skus, "quantity": st.integers(1, 8)}), min_size=1)
    )
    request = request_for(order, items=items, reason=draw(st.sampled_from(list(Reason))))
    as_of = PLACED + timedelta(days=draw(st.integers(0, 150)), minutes=draw(st.integers(0, 1439)))
    return order, request, as_of


def line_total(order: Order) -> Decimal:
    return sum((order_line.unit_price.amount * order_line.quantity for order_line in order.lines), Decimal(0))


def check_fee(verdict: Verdict) -> None:
    fee, value = verdict.policy.restocking_fee, verdict.policy.returned_value.amount
    half_cent = Decimal("0.005")  # the fee is rounded half-up to the cent
    assert fee.amount.amount <= value * fee.max_percent / 100 + half_cent
    assert fee.amount.amount >= 0
    assert fee.allowed or (fee.amount.amount == 0 and fee.max_percent == 0)


@settings(max_examples=150, deadline=None)
@given(cases(Platform.amazon))
def test_amazon_never_leaves_amazon_s_own_flow(case: tuple[Order, ReturnRequest, Any]) -> None:
    order, request, as_of = case

    verdict = BOOK.decide(order, request, AMAZON_US, as_of)

    assert set(verdict.policy.resolution_options) <= {Resolution.refund}
    assert verdict.policy.store_credit_bonus_percent == 0
    assert verdict.policy.return_required is True
    assert verdict.policy.returned_value.amount <= line_total(order)
    if order.fulfillment is Fulfillment.amazon:
        assert verdict.policy.restocking_fee.allowed is False
    check_fee(verdict)


@settings(max_examples=150, deadline=None)
@given(cases(Platform.shopify))
def test_merchant_fee_and_value_stay_within_bounds(case: tuple[Order, ReturnRequest, Any]) -> None:
    order, request, as_of = case

    verdict = BOOK.decide(order, request, SHOPIFY_CA, as_of)

    assert verdict.policy.returned_value.amount <= line_total(order)
    assert verdict.policy.restocking_fee.max_percent <= 15
    check_fee(verdict)
    if verdict.policy.eligible:
        assert verdict.policy.resolution_options[-1] is Resolution.refund  # retention options first
    else:
        assert verdict.policy.resolution_options == []
    if not verdict.policy.return_required:
        assert verdict.policy.returned_value.amount <= Decimal("20.00")
