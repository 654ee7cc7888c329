"""Reply templates: each scenario and locale renders, money and dates are local, loading refuses bad files."""

from __future__ import annotations

import shutil
from datetime import datetime
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import pytest

from app.domain import Fulfillment
from app.policy import PolicyBook, PolicyFileError
from app.policy.lint import lint_amazon_reply
from app.settings import DEFAULT_MERCHANT_POLICY

from .builders import Decide, amazon_order, la, line, shopify_order, toronto

IN_WINDOW = la(2026, 10, 20, 12, 0)
LATE = la(2026, 11, 20, 12, 0)
EXPIRED = la(2027, 1, 20, 12, 0)

AMAZON_CASES: list[tuple[str, dict[str, Any], datetime, str]] = [
    ("damaged", {}, IN_WINDOW, "amazon-us/damaged/en-US"),
    ("wrong_item", {}, IN_WINDOW, "amazon-us/wrong_item/en-US"),
    ("arrived_late", {}, IN_WINDOW, "amazon-us/seller_fault/en-US"),
    ("size_or_fit", {}, IN_WINDOW, "amazon-us/customer_fault/en-US"),
    ("size_or_fit", {}, LATE, "amazon-us/late/en-US"),
    ("size_or_fit", {"fulfillment": Fulfillment.amazon}, LATE, "amazon-us/late/en-US"),
    ("damaged", {}, EXPIRED, "amazon-us/ineligible/en-US"),
    ("other", {"delivered_at": None, "delivered_at_source": None}, IN_WINDOW, "amazon-us/not_shipped/en-US"),
]


@pytest.mark.parametrize(("reason", "order_fields", "as_of", "template_id"), AMAZON_CASES)
def test_amazon_replies_render_and_stay_on_amazon(
    decide: Decide, reason: str, order_fields: dict[str, Any], as_of: datetime, template_id: str
) -> None:
    verdict = decide(amazon_order(**order_fields), as_of, reason=reason)

    reply = verdict.template
    assert reply.id == template_id
    assert "113-4567890-1234567" in reply.subject
    assert "113-4567890-1234567" in reply.body
    assert "Amazon" in reply.body  # the buyer is sent to Amazon, never elsewhere
    assert lint_amazon_reply(reply.body) == []  # the rendered text too, not only the template


def test_amazon_reply_formats_the_late_fee_in_dollars(decide: Decide) -> None:
    verdict = decide(amazon_order(), LATE, reason="size_or_fit")

    assert "20% ($12.00)" in verdict.template.body
    assert "November 4, 2026" in verdict.template.body


def test_amazon_fba_late_reply_promises_no_fee(decide: Decide) -> None:
    verdict = decide(amazon_order(fulfillment=Fulfillment.amazon), LATE, reason="size_or_fit")

    assert "restocking fee" not in verdict.template.body
    assert "Amazon will tell you" in verdict.template.body


def test_amazon_reply_names_returned_items(decide: Decide) -> None:
    order = amazon_order(lines=[line("KET-01", "59.99", title="Kettle"), line("MUG-02", "9.99", title="Mug")])

    verdict = decide(order, IN_WINDOW, reason="damaged")

    assert "(Kettle and Mug)" in verdict.template.body


SHOPIFY_AS_OF = toronto(2026, 10, 20, 12, 0)
SHOPIFY_CASES: list[tuple[str, dict[str, Any], datetime, str]] = [
    ("size_or_fit", {}, SHOPIFY_AS_OF, "eligible"),
    ("damaged", {}, SHOPIFY_AS_OF, "returnless"),
    ("size_or_fit", {"lines": [line("COAT-01", "450.00 CAD")]}, SHOPIFY_AS_OF, "review"),
    ("size_or_fit", {}, toronto(2026, 12, 20, 12, 0), "ineligible"),
    (
        "size_or_fit",
        {"lines": [line("DRS-01", "40.00 CAD", tags=["final-sale"])]},
        SHOPIFY_AS_OF,
        "ineligible",
    ),
    ("other", {"delivered_at": None, "delivered_at_source": None}, SHOPIFY_AS_OF, "not_shipped"),
]


@pytest.mark.parametrize("locale", ["en-CA", "fr-CA"])
@pytest.mark.parametrize(("reason", "order_fields", "as_of", "scenario"), SHOPIFY_CASES)
def test_shopify_replies_render_in_each_locale(
    decide: Decide, locale: str, reason: str, order_fields: dict[str, Any], as_of: datetime, scenario: str
) -> None:
    verdict = decide(shopify_order(**order_fields), as_of, reason=reason, locale=locale)

    assert verdict.template.id == f"shopify-ca/{scenario}/{locale}"
    assert "#1001" in verdict.template.subject
    assert "#1001" in verdict.template.body
    assert ("courriel" in verdict.template.body) is (locale == "fr-CA" and scenario != "review")
    assert "\n\n\n" not in verdict.template.body


def test_french_reply_formats_money_and_dates_the_quebec_way(decide: Decide) -> None:
    verdict = decide(shopify_order(), SHOPIFY_AS_OF, reason="size_or_fit", locale="fr-CA")

    body = verdict.template.body
    assert "18,50\xa0$" in body  # Babel's non-breaking space keeps the amount and its sign together
    assert "20,35\xa0$" in body  # store credit: 18.50 plus the 10% bonus
    assert "15,72\xa0$" in body  # refund: 18.50 less the 15% fee of 2.78
    assert "10\xa0%" in body
    assert "4 novembre 2026" in body


def test_english_canadian_reply_formats_money(decide: Decide) -> None:
    verdict = decide(shopify_order(), SHOPIFY_AS_OF, reason="size_or_fit", locale="en-CA")

    assert "store credit of $20.35 ($18.50 plus a 10% bonus)" in verdict.template.body
    assert "a refund of $15.72" in verdict.template.body
    assert "November 4, 2026" in verdict.template.body


@pytest.mark.parametrize(
    ("locale", "exchange", "credit", "refund"),
    [
        ("en-CA", "an exchange", "store credit", "a refund"),
        ("fr-CA", "un échange", "un crédit", "un remboursement"),
    ],
)
def test_shopify_offers_exchange_and_credit_before_refund(
    decide: Decide, locale: str, exchange: str, credit: str, refund: str
) -> None:
    body = decide(shopify_order(), SHOPIFY_AS_OF, reason="size_or_fit", locale=locale).template.body

    assert -1 < body.index(exchange) < body.index(credit) < body.index(refund)


def _copy_templates(tmp_path: Path) -> Path:
    with as_file(files("app.policy") / "templates") as shipped:
        shutil.copytree(shipped, tmp_path / "templates")
    return tmp_path / "templates"


def _load(templates: Path) -> PolicyBook:
    return PolicyBook.load({"shopify_ca": DEFAULT_MERCHANT_POLICY}, templates=templates)


def test_an_amazon_template_breaking_the_rules_is_refused_at_load(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    bad = templates / "amazon-us" / "damaged.en-US.j2"
    bad.write_text(bad.read_text().replace("Best regards", "Please leave us a review!\nBest regards"))

    with pytest.raises(PolicyFileError, match="review_request") as raised:
        _load(templates)
    assert raised.value.source == str(bad)


def test_a_missing_template_is_refused_at_load(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "shopify-ca" / "review.fr-CA.j2").unlink()

    with pytest.raises(PolicyFileError, match="shopify-ca/review/fr-CA") as raised:
        _load(templates)
    assert raised.value.source == str(DEFAULT_MERCHANT_POLICY)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{% block subject %}Hi{% endblock %}", "has no body block"),
        ("{% block subject %}Hi{% endblock %}{% block body %}{% if x %}{% endblock %}", "line 1"),
    ],
)
def test_a_broken_template_is_refused_at_load(tmp_path: Path, source: str, problem: str) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "shopify-ca" / "eligible.en-CA.j2").write_text(source)

    with pytest.raises(PolicyFileError, match=problem):
        _load(templates)


def test_a_template_using_an_unknown_variable_fails_loudly(tmp_path: Path, decide: Decide) -> None:
    templates = _copy_templates(tmp_path)
    path = templates / "shopify-ca" / "eligible.en-CA.j2"
    path.write_text(path.read_text().replace("{{ order_ref }}", "{{ customer_name }}"))
    book = _load(templates)

    with pytest.raises(PolicyFileError, match="customer_name"):
        type(decide)(book)(shopify_order(), SHOPIFY_AS_OF, reason="size_or_fit")
