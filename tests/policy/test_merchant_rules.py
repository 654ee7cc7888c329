"""Merchant rules: each condition and outcome, the order rules apply in, and the limits no rule can lift."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from app.domain import Resolution
from app.policy import PolicyBook, Verdict
from app.policy.merchant import MerchantPolicy
from app.policy.policy_file import read_yaml
from app.settings import DEFAULT_MERCHANT_POLICY

from .builders import SHOPIFY_CA, line, request_for, result_of, rules, shopify_order, toronto

AS_OF = toronto(2026, 10, 20, 12, 0)  # day 15 after the default order's delivery (Oct 5)
SHIPPED = read_yaml(DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8"), source="shipped")


def policy_with(**changes: Any) -> MerchantPolicy:
    """The shipped policy with top-level keys replaced (`rules=[...]` replaces every rule)."""
    return MerchantPolicy.model_validate({**SHIPPED, "version": "test", **changes})


def decide_under(policy: MerchantPolicy, order: Any, as_of: datetime = AS_OF, **request: Any) -> Verdict:
    book = PolicyBook.load({}).with_merchant("shopify_ca", policy, source="test")
    return book.decide(order, request_for(order, **request), SHOPIFY_CA, as_of)


def with_rule(when: dict[str, Any], then: dict[str, Any]) -> MerchantPolicy:
    return policy_with(rules=[{"id": "under_test", "when": when, "then": then}])


REVIEW = {"review": True}


@pytest.mark.parametrize(
    ("when", "order_fields", "request_fields", "applies"),
    [
        ({"reason": ["size_or_fit"]}, {}, {"reason": "size_or_fit"}, True),
        ({"reason": ["size_or_fit"]}, {}, {"reason": "other"}, False),
        ({"fault": "seller"}, {}, {"reason": "damaged"}, True),
        ({"fault": "seller"}, {}, {"reason": "better_price"}, False),
        ({"days_since_delivery": {"at_most": 15}}, {}, {}, True),  # Oct 5 to Oct 20: 15 days
        ({"days_since_delivery": {"at_most": 14}}, {}, {}, False),
        ({"days_since_delivery": {"at_least": 15, "at_most": 20}}, {}, {}, True),
        ({"days_since_delivery": {"at_least": 16}}, {}, {}, False),
        (
            {"days_since_delivery": {"at_least": 0}},
            {"delivered_at": None, "delivered_at_source": None},
            {},
            False,
        ),
        ({"days_since_fulfillment": {"at_least": 17}}, {"shipped_at": toronto(2026, 10, 3, 9)}, {}, True),
        ({"days_since_fulfillment": {"at_least": 18}}, {"shipped_at": toronto(2026, 10, 3, 9)}, {}, False),
        ({"days_since_fulfillment": {"at_least": 0}}, {}, {}, False),  # no fulfilment date: cannot hold
        ({"days_since_order": {"at_most": 19}}, {}, {}, True),  # placed Oct 1
        ({"days_since_order": {"at_most": 18}}, {}, {}, False),
        ({"in_window": True}, {}, {}, True),
        ({"in_window": False}, {}, {}, False),
        ({"product_type": ["Outerwear"]}, {"lines": [line("COAT-01", "90.00 CAD")]}, {}, False),
        ({"tag": ["CLEARANCE"]}, {"lines": [line("COAT-01", "90.00 CAD", tags=["clearance"])]}, {}, True),
        ({"tag": ["clearance"]}, {"lines": [line("COAT-01", "90.00 CAD", tags=["new"])]}, {}, False),
        (
            {"sku": ["coat-01"]},
            {"lines": [line("COAT-01", "90.00 CAD"), line("HAT-01", "9.00 CAD")]},
            {},
            True,
        ),
        ({"sku": ["SCARF-01"]}, {"lines": [line("COAT-01", "90.00 CAD")]}, {}, False),
        ({"returned_value": {"over": "18.49"}}, {}, {}, True),  # the default order: 18.50 CAD
        ({"returned_value": {"over": "18.50"}}, {}, {}, False),
        ({"returned_value": {"at_least": "18.50"}}, {}, {}, True),
        ({"returned_value": {"under": "18.50"}}, {}, {}, False),
        ({"returned_value": {"at_most": "18.50"}}, {}, {}, True),
        ({"ship_to_country": ["ca"]}, {}, {}, True),
        ({"ship_to_country": ["US"]}, {}, {}, False),
        ({"ship_to_province": ["ON", "QC"]}, {}, {}, True),
        ({"ship_to_province": ["QC"]}, {}, {}, False),
        ({"earlier_returns": {"at_least": 2, "within_days": 30}}, {"earlier_returns_at": "5,29"}, {}, True),
        ({"earlier_returns": {"at_least": 2, "within_days": 30}}, {"earlier_returns_at": "5,31"}, {}, False),
        ({"fault": "customer", "ship_to_province": ["ON"], "returned_value": {"over": "10"}}, {}, {}, True),
        ({"fault": "customer", "ship_to_province": ["QC"], "returned_value": {"over": "10"}}, {}, {}, False),
    ],
)
def test_each_condition(
    when: dict[str, Any], order_fields: dict[str, Any], request_fields: dict[str, Any], applies: bool
) -> None:
    if isinstance(order_fields.get("earlier_returns_at"), str):
        days = order_fields["earlier_returns_at"].split(",")
        order_fields = {"earlier_returns_at": [AS_OF - timedelta(days=int(day)) for day in days]}
    request_fields = {"reason": "size_or_fit", **request_fields}

    verdict = decide_under(with_rule(when, REVIEW), shopify_order(**order_fields), **request_fields)

    assert verdict.policy.review is applies
    assert ("shopify.under_test" in rules(verdict)) is applies


def test_a_product_type_condition_matches_the_line_s_type() -> None:
    coat = line("COAT-01", "90.00 CAD").model_copy(update={"product_type": "Outerwear"})

    verdict = decide_under(with_rule({"product_type": ["outerwear"]}, REVIEW), shopify_order(lines=[coat]))

    assert verdict.policy.review is True
    assert result_of(verdict, "shopify.under_test") == "COAT-01: review before acting"


@pytest.mark.parametrize(
    ("then", "check"),
    [
        ({"eligible": False}, lambda p: not p.eligible and p.resolution_options == []),
        ({"resolution_options": ["refund"]}, lambda p: p.resolution_options == [Resolution.refund]),
        ({"restocking_fee_percent": "20"}, lambda p: p.restocking_fee.amount.amount == Decimal("3.70")),
        ({"store_credit_bonus_percent": "25"}, lambda p: p.store_credit_bonus_percent == 25),
        ({"returnless": True}, lambda p: not p.return_required and p.refund_trigger == "immediate"),
        ({"review": True}, lambda p: p.review),
        ({"window_days": 10}, lambda p: not p.eligible and str(p.return_window_ends) == "2026-10-15"),
        ({"window_days": 60}, lambda p: p.eligible and str(p.return_window_ends) == "2026-12-04"),
    ],
)
def test_each_outcome(then: dict[str, Any], check: Any) -> None:
    verdict = decide_under(
        with_rule({"reason": ["size_or_fit"]}, then), shopify_order(), reason="size_or_fit"
    )

    assert check(verdict.policy)


def test_a_later_rule_wins_and_a_rule_sees_the_window_as_set_so_far() -> None:
    policy = policy_with(
        rules=[
            {"id": "short_window", "when": {}, "then": {"window_days": 10}},
            {
                "id": "loyal_customers",
                "when": {"in_window": False, "ship_to_province": ["ON"]},
                "then": {"eligible": True},
            },
            {"id": "fee", "when": {}, "then": {"restocking_fee_percent": "5"}},
            {
                "id": "fee_ontario",
                "when": {"ship_to_province": ["ON"]},
                "then": {"restocking_fee_percent": "8"},
            },
        ]
    )

    verdict = decide_under(policy, shopify_order(), reason="size_or_fit")

    assert verdict.policy.eligible is True
    assert verdict.policy.restocking_fee.max_percent == 8
    assert rules(verdict)[5:9] == [
        "shopify.short_window",
        "shopify.loyal_customers",
        "shopify.fee",
        "shopify.fee_ontario",
    ]


def test_no_rule_puts_a_fee_on_a_seller_fault_return() -> None:
    policy = with_rule({}, {"restocking_fee_percent": "30"})

    verdict = decide_under(policy, shopify_order(), reason="defective")

    assert verdict.policy.restocking_fee.allowed is False
    assert verdict.policy.restocking_fee.amount.amount == 0
    assert result_of(verdict, "shopify.restocking_fee") == "none: the fault is the seller's"


def test_no_rule_makes_an_unshipped_order_or_a_final_sale_returnable() -> None:
    policy = with_rule({}, {"eligible": True, "returnless": True})
    unshipped = shopify_order(delivered_at=None, delivered_at_source=None)
    final_sale = shopify_order(lines=[line("DRS-01", "40.00 CAD", tags=["final-sale"])])

    not_shipped = decide_under(policy, unshipped, reason="size_or_fit")
    nothing_returnable = decide_under(policy, final_sale, reason="size_or_fit")

    for verdict in (not_shipped, nothing_returnable):
        assert verdict.policy.eligible is False
        assert verdict.policy.return_required is True
        assert verdict.policy.resolution_options == []
    assert not_shipped.template.id == "shopify-ca/not_shipped/en-CA"
    assert nothing_returnable.template.id == "shopify-ca/ineligible/en-CA"


def test_line_rules_decide_line_by_line_and_a_later_one_wins() -> None:
    policy = policy_with(
        lines=[
            {"id": "clearance", "when": {"tag": ["clearance"]}, "then": {"returnable": False}},
            {
                "id": "clearance_coats",
                "when": {"sku": ["COAT-01"], "fault": "customer"},
                "then": {"returnable": True},
            },
        ]
    )
    order = shopify_order(
        lines=[
            line("COAT-01", "90.00 CAD", tags=["clearance"]),
            line("HAT-01", "10.00 CAD", tags=["clearance"]),
            line("TEE-01", "20.00 CAD"),
        ]
    )

    verdict = decide_under(policy, order, reason="size_or_fit")

    assert verdict.policy.returned_value.amount == Decimal("110.00")
    assert result_of(verdict, "shopify.clearance") == "COAT-01, HAT-01: not returnable"
    assert result_of(verdict, "shopify.clearance_coats") == "COAT-01: returnable"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"rules": [{"id": "x", "when": {}, "then": {}}]}, "sets at least one outcome"),
        ({"rules": [{"id": "x", "when": {"days_since_delivery": {}}, "then": REVIEW}]}, "at_least, at_most"),
        (
            {"rules": [{"id": "x", "when": {"returned_value": {"over": 20.5}}, "then": REVIEW}]},
            "quoted string",
        ),
        ({"rules": [{"id": "Bad Id", "when": {}, "then": REVIEW}]}, "pattern"),
        ({"lines": [{"id": "x", "when": {"fault": "customer"}, "then": {"returnable": False}}]}, "line rule"),
        (
            {"rules": [{"id": "x", "when": {}, "then": {"restocking_fee_percent": "101"}}]},
            "less than or equal",
        ),
    ],
)
def test_a_rule_that_cannot_work_is_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        policy_with(**changes)
