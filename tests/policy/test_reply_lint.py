"""The Amazon compliance check: each rule catches what Amazon forbids, and lets Amazon's own links through."""

from __future__ import annotations

from importlib.resources import files

import pytest

from app.policy.lint import lint_amazon_reply


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("Track it at https://shop.example.com/track", "link"),
        ("See www.mystore.ca for sizes", "link"),
        ("Our site mystore.com has more", "link"),
        ("Order from amazon.ca instead", "link"),  # another marketplace is still off this one
        ("See https://amazon.com.example.io/returns", "link"),
        ("See notamazon.com/returns", "link"),
        ("Write to help@mystore.com", "email"),
        ("Call us at 1-800-555-0199", "phone"),
        ("Call us at (514) 555-0199", "phone"),
        ("Call us at +1 514.555.0199", "phone"),
        ("We can offer store credit instead", "off_amazon_offer"),
        ("Here is a gift card for the trouble", "off_amazon_offer"),
        ("Take a 10% discount on your next order", "off_amazon_offer"),
        ("Use this coupon", "off_amazon_offer"),
        ("Use promo code SAVE10", "off_amazon_offer"),
        ("Please leave us a review", "review_request"),
        ("We'd love your feedback", "review_request"),
    ],
)
def test_each_rule_catches_its_violation(text: str, rule: str) -> None:
    findings = lint_amazon_reply(f"Hello,\n\n{text}\n")

    assert rule in {finding.rule for finding in findings}
    assert {finding.line for finding in findings if finding.rule == rule} == {3}


@pytest.mark.parametrize(
    "text",
    [
        "Start the return at https://www.amazon.com/gp/css/order-history",
        "Go to amazon.com/returns and choose the order.",
        "Order {{ order_ref }} of {{ order.placed_at }} for {{ fee }}",  # Jinja expressions are not text
        "Your refund of $12.00 is issued through Amazon on January 31, 2027.",
    ],
)
def test_allowed_text_passes(text: str) -> None:
    assert lint_amazon_reply(text) == []


def test_shipped_amazon_templates_pass() -> None:
    templates = [
        entry
        for entry in (files("app.policy") / "templates" / "amazon-us").iterdir()
        if entry.name.endswith(".j2")
    ]

    assert len(templates) == 7
    for template in templates:
        assert lint_amazon_reply(template.read_text(encoding="utf-8")) == [], template.name


def test_an_amazon_order_id_is_not_a_phone_number() -> None:
    assert lint_amazon_reply("Your order 113-4567890-1234567 has shipped.") == []
