"""Loading policies: the shipped ones load; a bad merchant file is refused with its name and its problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ValidationProblem
from app.policy import PolicyBook, PolicyFileError
from app.settings import DEFAULT_MERCHANT_POLICY

from .builders import SHOPIFY_CA, Decide, amazon_order, la, request_for, shopify_order, toronto


def test_settings_default_path_is_the_shipped_policy() -> None:
    assert DEFAULT_MERCHANT_POLICY.parts[-4:] == ("app", "policy", "data", "shopify-ca-default.yaml")
    assert DEFAULT_MERCHANT_POLICY.is_file()


def _policy_with(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8")
    assert old in text  # the test edits something that is really there
    path = tmp_path / "merchant.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("  days: 30 ", "  days: [30 ", "is not valid YAML (line"),
        ('store_credit_bonus_percent: "10"', "store_credit_bonus_percent: 10.5", "quoted string"),
        ('max_value: "20.00"', 'max_value: "twenty"', "returnless.max_value"),
        ("  other: customer\n", "  other: customer\n  sold_out: customer\n", "reasons.sold_out"),
        ("  other: customer\n", "", "no fault given for reason(s) other"),
        (
            "resolution_options: [exchange, store_credit, refund]",
            "resolution_options: [cash]",
            "resolution_options",
        ),
        ("  default: en-CA", "  default: de-DE", "locales.default"),
        ('version: "2026.11"', "version: 2026.11", "version"),
        ("template_set: shopify-ca", "template_set: shopify-ca\ncolour: blue", "colour"),
        (
            "template_set: shopify-ca",
            "template_set: nowhere",
            "reply templates missing: nowhere/eligible/en-CA",
        ),
    ],
)
def test_a_bad_merchant_policy_names_the_file_and_the_problem(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    path = _policy_with(tmp_path, old, new)

    with pytest.raises(PolicyFileError) as raised:
        PolicyBook.load({"shopify_ca": path})

    assert raised.value.source == str(path)
    assert str(path) in str(raised.value)
    assert problem in raised.value.problem


def test_a_policy_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- one\n- two\n")

    with pytest.raises(PolicyFileError, match="mapping"):
        PolicyBook.load({"shopify_ca": path})


def test_a_missing_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(PolicyFileError, match="cannot be read") as raised:
        PolicyBook.load({"shopify_ca": path})
    assert raised.value.source == str(path)


def test_a_merchant_policy_changes_the_shopify_decision_only(tmp_path: Path) -> None:
    path = _policy_with(
        tmp_path, 'restocking_fee_percent:\n  customer: "15"', 'restocking_fee_percent:\n  customer: "50"'
    )
    book = Decide(PolicyBook.load({"shopify_ca": path}))
    shipped = Decide(PolicyBook.load({"shopify_ca": DEFAULT_MERCHANT_POLICY}))

    shopify_fee = book(
        shopify_order(), toronto(2026, 10, 20, 12, 0), reason="size_or_fit"
    ).policy.restocking_fee
    amazon = book(amazon_order(), la(2026, 11, 20, 12, 0), reason="size_or_fit")
    amazon_shipped = shipped(amazon_order(), la(2026, 11, 20, 12, 0), reason="size_or_fit")

    assert shopify_fee.max_percent == 50
    assert amazon.policy == amazon_shipped.policy
    assert amazon.policy.restocking_fee.max_percent == 20


def test_a_channel_without_a_merchant_policy_is_a_configuration_error() -> None:
    book = PolicyBook.load({})
    order = shopify_order()

    with pytest.raises(LookupError, match="shopify_ca"):
        book.decide(order, request_for(order), SHOPIFY_CA, toronto(2026, 10, 20, 12, 0))


def test_an_unknown_sku_is_the_one_error_a_decision_raises(decide: Decide) -> None:
    with pytest.raises(ValidationProblem) as raised:
        decide(amazon_order(), la(2026, 10, 20, 12, 0), items=[{"sku": "KET-01"}, {"sku": "NOPE-9"}])

    assert raised.value.errors == [
        {
            "loc": ["body", "items", 1, "sku"],
            "msg": "SKU 'NOPE-9' is not on order 113-4567890-1234567",
            "type": "unknown_sku",
            "input": "NOPE-9",
        }
    ]
