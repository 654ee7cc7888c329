"""The language of the reply: fixed on Amazon US, the customer's own (or Quebec's) on a merchant store."""

from __future__ import annotations

from app.domain import Locale, Order, ReturnRequest
from app.policy.evaluation import Trace
from app.policy.merchant import Locales

AMAZON_US_LOCALE = Locale.en_us


def amazon_us_locale(request: ReturnRequest, trace: Trace) -> Locale:
    if request.locale is not None and request.locale is not AMAZON_US_LOCALE:
        trace.add("locale", f"{request.locale} asked, but Amazon US replies are in {AMAZON_US_LOCALE} only")
    else:
        trace.add("locale", f"{AMAZON_US_LOCALE}: Amazon US")
    return AMAZON_US_LOCALE


def merchant_locale(order: Order, request: ReturnRequest, locales: Locales, trace: Trace) -> Locale:
    """The request's locale, else the checkout language, else the region's language, else the default.

    `Order.customer_locale` is what the customer chose at checkout; the customer record's own locale
    defaults to the shop's language, which is why connectors do not use it.
    """
    if request.locale is not None:
        if request.locale in locales.offered:
            trace.add("locale", f"{request.locale}: asked by the request")
            return request.locale
        same_language = _by_language(request.locale.value, locales)
        if same_language is not None:
            trace.add(
                "locale", f"{same_language}: {request.locale} asked, the shop answers in {same_language}"
            )
            return same_language
    if order.customer_locale:
        chosen = _by_language(order.customer_locale, locales)
        if chosen is not None:
            trace.add("locale", f"{chosen}: the customer chose {order.customer_locale!r} at checkout")
            return chosen
    for rule in locales.by_region:
        country_matches = order.ship_to_country is None or order.ship_to_country.upper() == rule.country
        if country_matches and (order.ship_to_region or "").upper() == rule.region:
            trace.add("locale", f"{rule.locale}: the order ships to {rule.country}-{rule.region}")
            return rule.locale
    trace.add("locale", f"{locales.default}: the shop's default")
    return locales.default


def _by_language(tag: str, locales: Locales) -> Locale | None:
    language = tag.replace("_", "-").split("-")[0].casefold()
    return next((locale for locale in locales.offered if locale.value.split("-")[0] == language), None)
