"""Amazon.ca (`amazon-ca`): where it differs from Amazon.com (the label, the refund, the fee, the
languages), what it shares (the window, the holiday rule, Amazon's flow only), and that no merchant
file reaches it."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.domain import Classification, Fulfillment, Locale, Market, Order, Platform, RefundTrigger, Resolution
from app.policy import PolicyBook, PolicyFileError, Verdict
from app.policy.lint import CA_COMPLIANCE_FILE, ComplianceRules, lint_amazon_reply
from app.policy.merchant import MerchantPolicy
from app.policy.policy_file import read_policy_file
from app.settings import DEFAULT_MERCHANT_POLICY

from .builders import amazon_order, line, request_for, result_of, rules

TORONTO = ZoneInfo("America/Toronto")
AMAZON_CA = Market(
    channel="amazon_ca",
    platform=Platform.amazon,
    zone=TORONTO,
    transit_days=5,
    marketplace="A2EUQ1WTGCTBG2",
    currency="CAD",
    policy="amazon-ca",
)
LABEL_MUST = "upload a prepaid return label in Manage Returns (Amazon.ca's default label is not prepaid)"


def toronto(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=TORONTO)


def ca_order(**overrides: Any) -> Order:
    """An Amazon.ca seller-fulfilled order, placed and delivered in October 2026 (no holiday period)."""
    lines = [line("THROW-HT-1", "89.99 CAD", title="Heated Throw Blanket")]
    fields: dict[str, Any] = {
        "channel": "amazon_ca",
        "order_ref": "701-4455667-1234501",
        "order_id": "701-4455667-1234501",
        "placed_at": toronto(2026, 10, 1, 9),
        "delivered_at": toronto(2026, 10, 5, 14),
        "currency": "CAD",
        "lines": lines,
    }
    return amazon_order(**{**fields, **overrides})


@pytest.fixture(scope="module")
def book() -> PolicyBook:
    return PolicyBook.load({"shopify_ca": DEFAULT_MERCHANT_POLICY})


def decide(
    book: PolicyBook, order: Order, as_of: datetime, market: Market = AMAZON_CA, **request: Any
) -> Verdict:
    return book.decide(order, request_for(order, **request), market, as_of)


def test_in_policy_a_seller_fault_return_gets_a_prepaid_label_from_the_seller(book: PolicyBook) -> None:
    verdict = decide(book, ca_order(), toronto(2026, 10, 20), reason="damaged")

    policy = verdict.policy
    assert (policy.id, policy.version, verdict.classification) == (
        "amazon-ca",
        "2026.11",
        Classification.compliance_return,
    )
    assert (policy.eligible, policy.return_window_ends) == (True, date(2026, 11, 4))
    assert policy.resolution_options == [Resolution.refund]
    assert policy.refund_trigger is RefundTrigger.return_received
    assert policy.return_shipping_paid_by == "seller"
    assert LABEL_MUST in policy.must
    assert "refund once the returned item arrives" in policy.must
    assert result_of(verdict, "amazon.seller_fulfilled") == (
        "seller-fulfilled: the seller refunds once the returned item arrives"
    )
    assert verdict.queue.name == "amazon-compliance"
    assert verdict.template.id == "amazon-ca/damaged/en-CA"
    assert all(step.policy == "amazon-ca@2026.11" for step in verdict.explanation[:-3])


def test_a_customer_fault_return_travels_on_amazons_unpaid_label(book: PolicyBook) -> None:
    verdict = decide(book, ca_order(), toronto(2026, 10, 20), reason="size_or_fit")

    assert verdict.policy.return_shipping_paid_by == "customer"
    assert LABEL_MUST not in verdict.policy.must
    assert result_of(verdict, "amazon.return_label") == (
        "Amazon.ca's default label is not prepaid: the buyer pays the return shipping; "
        "the return address must be in CA"
    )


def test_fba_returns_are_amazons_own_no_label_rule(book: PolicyBook) -> None:
    verdict = decide(book, ca_order(fulfillment=Fulfillment.amazon), toronto(2026, 10, 20), reason="damaged")

    assert verdict.policy.refund_trigger is RefundTrigger.amazon
    assert "amazon.return_label" not in rules(verdict)
    assert LABEL_MUST not in verdict.policy.must


def test_the_late_period_states_no_fee_up_front(book: PolicyBook) -> None:
    verdict = decide(book, ca_order(), toronto(2026, 11, 20), reason="size_or_fit")

    assert (verdict.policy.eligible, verdict.template.id) == (True, "amazon-ca/late/en-CA")
    assert verdict.policy.restocking_fee.allowed is False
    assert verdict.policy.restocking_fee.max_percent == Decimal(0)
    assert "amazon.restocking_fee" not in rules(verdict)
    expired = decide(book, ca_order(), toronto(2026, 12, 5), reason="size_or_fit")
    assert (expired.policy.eligible, expired.policy.resolution_options) == (False, [])


@pytest.mark.parametrize("year", [2026, 2027, 2033])
def test_the_holiday_rule_holds_every_year(book: PolicyBook, year: int) -> None:
    order = ca_order(placed_at=toronto(year, 12, 10), delivered_at=toronto(year, 12, 12))

    verdict = decide(book, order, toronto(year, 12, 20))

    assert verdict.policy.return_window_ends == date(year + 1, 1, 31)


def test_dates_are_taken_in_toronto(book: PolicyBook) -> None:
    # 02:00Z on Oct 6 is still Oct 5 in Toronto: the window's last day is Nov 4.
    order = ca_order(delivered_at=datetime.fromisoformat("2026-10-06T02:00:00+00:00"))

    assert decide(book, order, toronto(2026, 10, 20)).policy.return_window_ends == date(2026, 11, 4)


@pytest.mark.parametrize(
    ("request_locale", "region", "market_locales", "locale", "why"),
    [
        (None, None, (), Locale.en_ca, "en-CA: Amazon.ca's language (the buyer's province is not known)"),
        (Locale.fr_ca, None, (), Locale.fr_ca, "fr-CA: asked by the request"),
        (Locale.en_us, None, (), Locale.en_ca, "en-CA: en-US asked, Amazon.ca replies in en-CA"),
        (None, "QC", (), Locale.fr_ca, "fr-CA: the order ships to CA-QC"),
        (None, "QC", (Locale.en_ca,), Locale.en_ca, "en-CA: Amazon.ca"),
        (None, None, (Locale.fr_ca, Locale.en_ca), Locale.en_ca, "en-CA: Amazon.ca's language"),
    ],
)
def test_the_reply_language(
    book: PolicyBook,
    request_locale: Locale | None,
    region: str | None,
    market_locales: tuple[Locale, ...],
    locale: Locale,
    why: str,
) -> None:
    # Amazon orders never carry an address (the service asks for no buyer PII); a region known some
    # other way (an ORDER_CHANGE notification's postal code, say) is what `ship_to_region` would hold.
    order = ca_order(ship_to_country="CA" if region else None, ship_to_region=region)
    market = dataclasses.replace(AMAZON_CA, locales=market_locales)

    verdict = decide(book, order, toronto(2026, 10, 20), market, locale=request_locale)

    assert (verdict.locale, verdict.template.locale) == (locale, locale)
    assert result_of(verdict, "locale").startswith(why)
    assert ("fr" in verdict.queue.skills) is (locale is Locale.fr_ca)


def test_a_merchant_file_cannot_take_the_amazon_ca_policy(tmp_path: Path) -> None:
    text = DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8").replace(
        "id: shopify-ca-default", "id: amazon-ca"
    )
    path = tmp_path / "merchant.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(PolicyFileError, match="'amazon-ca' is a platform policy's"):
        PolicyBook.load({"shopify_ca": path})
    generous = read_policy_file(DEFAULT_MERCHANT_POLICY, MerchantPolicy)
    book = PolicyBook.load({"shopify_ca": DEFAULT_MERCHANT_POLICY}).with_merchant(
        "amazon_ca", generous, source="draft"
    )
    # Even a merchant policy put under the Amazon channel's key is never what decides its orders.
    verdict = decide(book, ca_order(), toronto(2026, 10, 20), reason="size_or_fit")
    assert (verdict.policy.id, verdict.policy.resolution_options) == ("amazon-ca", [Resolution.refund])


def test_every_amazon_ca_template_passes_amazon_ca_s_rules_in_both_languages() -> None:
    rules = read_policy_file(CA_COMPLIANCE_FILE, ComplianceRules)
    templates = [
        entry
        for entry in (files("app.policy") / "templates" / "amazon-ca").iterdir()
        if entry.name.endswith(".j2")
    ]

    assert len(templates) == 14
    assert {entry.name.split(".")[1] for entry in templates} == {"en-CA", "fr-CA"}
    for template in templates:
        assert lint_amazon_reply(template.read_text(encoding="utf-8"), rules) == [], template.name


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("Nous vous offrons un crédit en magasin", "off_amazon_offer_fr"),
        ("Voici une carte-cadeau pour le dérangement", "off_amazon_offer_fr"),
        ("Profitez d'un rabais sur votre prochaine commande", "off_amazon_offer_fr"),
        ("Nous pouvons vous rembourser directement", "off_amazon_offer_fr"),
        ("Laissez-nous un avis", "review_request_fr"),
        ("Vos commentaires nous aident", "review_request_fr"),
        ("Order from amazon.com instead", "link"),  # another marketplace is off this one
        ("Send an Interac e-transfer", "off_amazon_offer"),
    ],
)
def test_amazon_ca_s_rules_read_french_and_keep_to_amazon_ca(text: str, rule: str) -> None:
    rules = read_policy_file(CA_COMPLIANCE_FILE, ComplianceRules)

    assert rule in {finding.rule for finding in lint_amazon_reply(text, rules)}


def test_amazon_ca_s_own_domain_is_allowed() -> None:
    rules = read_policy_file(CA_COMPLIANCE_FILE, ComplianceRules)

    assert (
        lint_amazon_reply("Start the return from Your Orders on Amazon.ca or www.amazon.ca/returns", rules)
        == []
    )
