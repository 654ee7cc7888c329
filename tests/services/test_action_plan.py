"""The money of an action: never more than was paid, the fee kept with its share of the tax."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.connectors.shopify import RefundTransaction, SuggestedRefund
from app.domain import ActionPlan, Money, minor_unit
from app.services.action_plan import refund_transactions, total

CURRENCIES = ["CAD", "USD", "EUR", "JPY", "KWD"]


@st.composite
def suggestions(draw: st.DrawFn) -> SuggestedRefund:
    currency = draw(st.sampled_from(CURRENCIES))
    unit = minor_unit(currency)
    parts = draw(st.lists(st.integers(min_value=0, max_value=10_000_000), min_size=1, max_size=3))
    amounts = [Money(amount=unit * part, currency=currency) for part in parts]
    paid = total([RefundTransaction("gw", None, a) for a in amounts], currency)
    tax = Money(amount=(paid.amount * Decimal("0.13")).quantize(unit), currency=currency)
    return SuggestedRefund(
        amount=paid,
        tax=tax,
        transactions=[
            RefundTransaction(f"gw{i}", f"gid://shopify/OrderTransaction/{i}", a)
            for i, a in enumerate(amounts)
        ],
    )


fees = st.decimals(min_value=0, max_value=100, places=2)


@given(suggestions(), fees)
def test_the_refund_never_exceeds_what_was_paid(suggested: SuggestedRefund, fee: Decimal) -> None:
    refunds = refund_transactions(suggested, fee)
    refunded = total(refunds, suggested.amount.currency)
    assert Decimal(0) <= refunded.amount <= suggested.amount.amount
    by_parent = {t.parent_id: t.amount.amount for t in suggested.transactions}
    for refund in refunds:
        assert refund.amount.currency == suggested.amount.currency  # the presentment currency
        assert 0 < refund.amount.amount <= by_parent[refund.parent_id]
        assert refund.amount.amount == refund.amount.amount.quantize(minor_unit(refund.amount.currency))


@given(suggestions(), fees)
def test_the_fee_is_kept_with_its_share_of_the_tax(suggested: SuggestedRefund, fee: Decimal) -> None:
    currency = suggested.amount.currency
    refunded = total(refund_transactions(suggested, fee), currency).amount
    exact = suggested.amount.amount * (100 - fee) / 100  # lines and tax, both less the fee's share
    # Rounded down once per payment: short of the exact figure by less than a minor unit each.
    assert exact - minor_unit(currency) * len(suggested.transactions) < refunded <= exact


def test_no_fee_refunds_everything_paid() -> None:
    cad = [Money(amount=Decimal("94.92"), currency="CAD")]
    suggested = SuggestedRefund(
        cad[0], Money(amount=Decimal("10.92"), currency="CAD"), [RefundTransaction("g", "p", cad[0])]
    )
    assert total(refund_transactions(suggested, Decimal(0)), "CAD").amount == Decimal("94.92")
    assert total(refund_transactions(suggested, Decimal(15)), "CAD").amount == Decimal("80.68")


def test_a_plan_stored_before_plans_were_typed_reads_back_the_same() -> None:
    # As rows written by earlier releases hold it: amounts as strings, pairs as lists.
    stored = {
        "lines": [["gid://shopify/LineItem/1071823172", 1]],
        "fee_percent": "10",
        "notify": True,
        "note": None,
        "transactions": [
            {"gateway": "shopify_payments", "parent_id": "gid://shopify/OrderTransaction/1",
             "amount": {"amount": "35.10", "currency": "CAD"}}
        ],
    }  # fmt: skip
    plan = ActionPlan.model_validate(stored)
    assert plan.lines == [("gid://shopify/LineItem/1071823172", 1)]
    assert plan.fee_percent == Decimal("10")
    assert plan.transactions[0].amount == Money(amount=Decimal("35.10"), currency="CAD")
    assert ActionPlan.model_validate(plan.model_dump(mode="json", exclude_unset=True)) == plan
