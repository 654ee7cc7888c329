"""Loading policies: the shipped ones load; a bad merchant file is refused with its name and its problem."""

from __future__ import annotations

from pathlib import Path
from typing import get_type_hints

import pytest

from app.errors import ValidationProblem
from app.policy import PolicyBook, PolicyFileError, amazon
from app.policy.book import Shared, decide_platform
from app.policy.merchant import MerchantPolicy
from app.policy.replies import ReplyBook
from app.policy.routing import RoutingTable
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


def line_of(path: Path, marker: str) -> int:
    """The first line holding `marker` that is not a comment."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(
        number
        for number, text in enumerate(lines, start=1)
        if marker in text and not text.lstrip().startswith("#")
    )


@pytest.mark.parametrize(
    ("old", "new", "marker", "problem"),
    [
        ("  days: 30 ", "  days: [30 ", "holiday:", "is not valid YAML (line"),
        (
            'store_credit_bonus_percent: "10"',
            "store_credit_bonus_percent: 10.5",
            "store_credit_bonus_percent",
            "defaults.store_credit_bonus_percent: Value error, write 10.5 as a quoted string",
        ),
        (
            'returned_value: {at_most: "20.00"}',
            'returned_value: {at_most: "twenty"}',
            '"twenty"',
            "rules[2].when.returned_value.at_most: Input should be a valid decimal",
        ),
        (
            "days_since_delivery: {at_most: 90}",
            "days_since_delivery: {at_most: ninety}",
            "ninety",
            "rules[0].when.days_since_delivery.at_most: Input should be a valid integer",
        ),
        (
            "when: {fault: customer}\n",
            "when: {fault: customer, colour: blue}\n",
            "colour: blue",
            "rules[1].when.colour: Extra inputs are not permitted",
        ),
        ("  other: customer\n", "  other: customer\n  sold_out: customer\n", "sold_out", "reasons.sold_out"),
        ("  other: customer\n", "", "reasons:", "no fault given for reason(s) other"),
        (
            "resolution_options: [exchange, store_credit, refund]",
            "resolution_options: [cash]",
            "[cash]",
            "defaults.resolution_options[0]",
        ),
        ("  default: en-CA", "  default: de-DE", "default: de-DE", "locales.default"),
        ('version: "2026.11"', "version: 2026.11", "version: 2026.11", "version"),
        ("template_set: shopify-ca", "template_set: shopify-ca\ncolour: blue", "colour", "colour"),
        (
            "  - id: returnless",
            "  - id: customer_fault_fee",
            "rules:",
            "[2] id 'customer_fault_fee' is taken by [1]",
        ),
        ("  - id: returnless", "  - id: window", "rules:", "[2] id 'window' is a built-in step"),
        ("when: {tag: [final-sale], fault: customer}", "when: {fault: customer}", "final_sale", "line rule"),
        ("  days: 30 ", "  days: 30\n  days: 45", "days: 45", "key 'days' appears twice"),
    ],
)
def test_a_bad_merchant_policy_names_the_file_the_line_and_the_problem(
    tmp_path: Path, old: str, new: str, marker: str, problem: str
) -> None:
    path = _policy_with(tmp_path, old, new)

    with pytest.raises(PolicyFileError) as raised:
        PolicyBook.load({"shopify_ca": path})

    assert raised.value.source == str(path)
    assert raised.value.line == line_of(path, marker)
    assert str(raised.value).startswith(f"{path}: line {raised.value.line}: ")
    assert problem in raised.value.problem


def test_a_policy_whose_templates_are_missing_is_refused(tmp_path: Path) -> None:
    path = _policy_with(tmp_path, "template_set: shopify-ca", "template_set: nowhere")

    with pytest.raises(PolicyFileError) as raised:
        PolicyBook.load({"shopify_ca": path})

    assert raised.value.source == str(path)
    assert "reply templates missing: nowhere/eligible/en-CA" in raised.value.problem


def test_a_merchant_policy_cannot_take_the_platform_policy_s_id(tmp_path: Path) -> None:
    path = _policy_with(tmp_path, "id: shopify-ca-default", "id: amazon-us")

    with pytest.raises(PolicyFileError, match="platform policy"):
        PolicyBook.load({"shopify_ca": path})


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
        tmp_path, 'then: {restocking_fee_percent: "15"}', 'then: {restocking_fee_percent: "50"}'
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


def test_the_amazon_decision_cannot_be_handed_a_merchant_policy() -> None:
    """By construction: nothing the Amazon path takes can hold a merchant policy or the book holding one."""
    taken = get_type_hints(decide_platform) | get_type_hints(amazon.evaluate_amazon)
    modules = {getattr(value, "__module__", None) for value in vars(amazon).values()}

    assert MerchantPolicy not in taken.values()
    assert PolicyBook not in taken.values()
    assert set(get_type_hints(Shared).values()) == {ReplyBook, RoutingTable}
    assert not any(str(module).startswith("app.policy.merchant") for module in modules)
