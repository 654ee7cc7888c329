"""The Amazon compliance check: each rule catches what Amazon forbids, and lets Amazon's own links through."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from app.policy import PolicyBook, PolicyFileError
from app.policy.lint import COMPLIANCE_FILE, ComplianceRules, lint_amazon_reply, shipped_compliance_rules


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
        ("We can refund you directly to save time", "off_amazon_offer"),
        ("We will send the money by PayPal", "off_amazon_offer"),
        ("We can exchange it directly with us", "off_amazon_offer"),
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


def test_every_shipped_rule_is_tested() -> None:
    tested = {"email", "link", "phone", "off_amazon_offer", "review_request"}

    assert {rule.name for rule in shipped_compliance_rules().rules} == tested


def test_the_rules_are_data_a_new_rule_applies_to_the_templates(tmp_path: Path) -> None:
    text = COMPLIANCE_FILE.read_text(encoding="utf-8")
    rule = "  - name: urgency\n    why: no pressure\n    pattern: 'Returns Center'\n"
    path = tmp_path / "compliance.yaml"
    path.write_text(text + rule, encoding="utf-8")

    with pytest.raises(PolicyFileError, match="urgency: no pressure") as raised:
        PolicyBook.load({}, compliance_files=[path])
    assert raised.value.source.endswith(".en-US.j2")  # a shipped Amazon template now fails the check
    assert lint_amazon_reply(
        "Open the Returns Center.",
        ComplianceRules.model_validate(
            {
                "id": "x",
                "version": "1",
                "rules": [{"name": "urgency", "why": "no", "pattern": "Returns Center"}],
            }
        ),
    )


def test_a_rule_that_is_not_a_regular_expression_is_refused_with_its_line(tmp_path: Path) -> None:
    text = COMPLIANCE_FILE.read_text(encoding="utf-8")
    path = tmp_path / "compliance.yaml"
    path.write_text(text.replace("pattern: '\\b(?:reviews?", "pattern: '\\b((?:reviews?"), encoding="utf-8")

    with pytest.raises(PolicyFileError, match="not a regular expression") as raised:
        PolicyBook.load({}, compliance_files=[path])
    assert raised.value.line == next(
        number for number, line in enumerate(path.read_text().splitlines(), 1) if "((?:reviews?" in line
    )
