"""Rules that hold for every order and request, checked with generated ones."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import Fault, Fulfillment, Order, Platform, Reason, Resolution, ReturnRequest
from app.policy import PolicyBook, Verdict
from app.policy.merchant import MerchantPolicy
from app.policy.policy_file import read_yaml
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


# --- Whatever a merchant writes -------------------------------------------------------------------

BASE = PolicyBook.load({})
SHIPPED = read_yaml(DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8"), source="shipped")

percents = st.integers(0, 100).map(str)
amounts = st.decimals(min_value=0, max_value=1000, places=2).map(str)
day_ranges = st.one_of(
    st.fixed_dictionaries({"at_most": st.integers(0, 200)}),
    st.fixed_dictionaries({"at_least": st.integers(0, 200)}),
)
conditions = st.fixed_dictionaries(
    {},
    optional={
        "reason": st.lists(st.sampled_from([reason.value for reason in Reason]), min_size=1, max_size=3),
        "fault": st.sampled_from(["seller", "customer"]),
        "days_since_delivery": day_ranges,
        "days_since_order": day_ranges,
        "in_window": st.booleans(),
        "tag": st.just(["final-sale"]),
        "returned_value": st.one_of(
            st.fixed_dictionaries({"over": amounts}), st.fixed_dictionaries({"at_most": amounts})
        ),
        "ship_to_province": st.just(["ON"]),
        "earlier_returns": st.fixed_dictionaries({"at_least": st.integers(1, 4)}),
    },
)
outcomes = st.fixed_dictionaries(
    {},
    optional={
        "eligible": st.booleans(),
        "window_days": st.integers(1, 120),
        "restocking_fee_percent": percents,
        "resolution_options": st.permutations([option.value for option in Resolution]).flatmap(
            lambda options: st.integers(1, 3).map(lambda size: options[:size])
        ),
        "store_credit_bonus_percent": percents,
        "returnless": st.booleans(),
        "review": st.booleans(),
    },
).filter(bool)


@st.composite
def merchant_policies(draw: st.DrawFn) -> MerchantPolicy:
    rules = draw(st.lists(st.tuples(conditions, outcomes), max_size=6))
    return MerchantPolicy.model_validate(
        {
            **SHIPPED,
            "id": "anything-goes",
            "version": "1",
            "window": {"days": draw(st.integers(1, 120))},
            "defaults": {
                "resolution_options": ["exchange", "store_credit", "refund"],
                "store_credit_bonus_percent": draw(percents),
                "restocking_fee_percent": draw(percents),
                "returnless": draw(st.booleans()),
            },
            "rules": [
                {"id": f"r{index}", "when": when, "then": then} for index, (when, then) in enumerate(rules)
            ],
        }
    )


@settings(max_examples=100, deadline=None)
@given(merchant_policies(), cases(Platform.amazon))
def test_no_merchant_policy_changes_an_amazon_decision(
    policy: MerchantPolicy, case: tuple[Order, ReturnRequest, Any]
) -> None:
    order, request, as_of = case
    book = BASE.with_merchant("shopify_ca", policy, source="generated")

    verdict = book.decide(order, request, AMAZON_US, as_of)

    assert verdict == BOOK.decide(order, request, AMAZON_US, as_of)
    assert not {Resolution.exchange, Resolution.store_credit} & set(verdict.policy.resolution_options)
    assert {step.policy for step in verdict.explanation} == {"amazon-us@2026.11", "routing@2026.11"}
    assert not any(step.rule.startswith("shopify.") for step in verdict.explanation)


@settings(max_examples=100, deadline=None)
@given(merchant_policies(), cases(Platform.shopify))
def test_whatever_the_merchant_writes_fees_stay_capped_and_seller_faults_free(
    policy: MerchantPolicy, case: tuple[Order, ReturnRequest, Any]
) -> None:
    order, request, as_of = case
    book = BASE.with_merchant("shopify_ca", policy, source="generated")

    verdict = book.decide(order, request, SHOPIFY_CA, as_of)

    check_fee(verdict)
    assert verdict.policy.restocking_fee.max_percent <= 100
    assert verdict.policy.returned_value.amount <= line_total(order)
    if verdict.fault is Fault.seller:
        assert verdict.policy.restocking_fee.allowed is False
    if not verdict.policy.eligible:
        assert verdict.policy.resolution_options == []
        assert verdict.policy.store_credit_bonus_percent == 0
        assert verdict.policy.return_required is True
    if not order.shipped:
        assert verdict.policy.eligible is False
    # The same inputs and as_of: the same decision, every time.
    assert verdict == book.decide(order, request, SHOPIFY_CA, as_of)


@settings(max_examples=100, deadline=None)
@given(cases(Platform.amazon) | cases(Platform.shopify))
def test_an_in_window_seller_fault_return_never_carries_a_fee(case: tuple[Order, ReturnRequest, Any]) -> None:
    order, request, as_of = case
    market = AMAZON_US if order.platform is Platform.amazon else SHOPIFY_CA

    verdict = BOOK.decide(order, request, market, as_of)

    in_window = verdict.policy.return_window_ends is not None and (
        as_of.astimezone(market.zone).date() <= verdict.policy.return_window_ends
    )
    if verdict.fault is Fault.seller and in_window:
        assert verdict.policy.restocking_fee.allowed is False
        assert verdict.policy.restocking_fee.amount.amount == 0
    assert verdict == BOOK.decide(order, request, market, as_of)
