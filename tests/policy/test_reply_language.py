"""Which language the reply is in: request, then checkout language, then Quebec, then the shop's default."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain import Locale

from .builders import Decide, shopify_order, toronto

AS_OF = toronto(2026, 10, 20, 12, 0)


@pytest.mark.parametrize(
    ("request_locale", "order_fields", "expected", "why"),
    [
        ("en-CA", {"customer_locale": "fr", "ship_to_region": "QC"}, Locale.en_ca, "asked by the request"),
        ("fr-CA", {"customer_locale": "en"}, Locale.fr_ca, "asked by the request"),
        ("en-US", {"ship_to_region": "QC"}, Locale.en_ca, "en-US asked"),
        (None, {"customer_locale": "fr-FR", "ship_to_region": "ON"}, Locale.fr_ca, "at checkout"),
        (None, {"customer_locale": "en", "ship_to_region": "QC"}, Locale.en_ca, "at checkout"),
        (None, {"customer_locale": "es", "ship_to_region": "QC"}, Locale.fr_ca, "ships to CA-QC"),
        (None, {"ship_to_region": "QC"}, Locale.fr_ca, "ships to CA-QC"),
        (None, {"ship_to_region": "ON"}, Locale.en_ca, "default"),
        (None, {"ship_to_country": "US", "ship_to_region": "QC"}, Locale.en_ca, "default"),
    ],
)
def test_shopify_locale_resolution_order(
    decide: Decide, request_locale: str | None, order_fields: dict[str, Any], expected: Locale, why: str
) -> None:
    verdict = decide(shopify_order(**order_fields), AS_OF, locale=request_locale)

    assert verdict.locale is expected
    assert verdict.template.locale is expected
    assert verdict.template.id.endswith(f"/{expected.value}")
    locale_step = next(step for step in verdict.explanation if step.rule == "locale")
    assert why in locale_step.result
