"""The language of the reply: the request's, else the customer's own, else their region's, else the default.

Both kinds of policy name the locales they reply in (`Locales`); a channel may narrow them (`LOCALES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.domain import Locale, Order, ReturnRequest
from app.policy.evaluation import Trace


class RegionLocale(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    country: str
    region: str
    locale: Locale


class Locales(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    offered: list[Locale] = Field(min_length=1)
    default: Locale
    by_region: list[RegionLocale] = Field(default_factory=list)

    @model_validator(mode="after")
    def _only_offered(self) -> Self:
        used = {self.default, *(rule.locale for rule in self.by_region)}
        unknown = sorted(locale.value for locale in used if locale not in self.offered)
        if unknown:
            raise ValueError(f"{', '.join(unknown)} used but not in offered")
        return self

    def narrowed(self, channel_locales: Sequence[Locale]) -> Locales:
        """These locales as a channel that replies only in `channel_locales`: the policy's default while
        the channel keeps it (a marketplace's language stays its default), else the channel's first."""
        if not channel_locales or list(channel_locales) == self.offered:
            return self
        offered = [locale for locale in channel_locales if locale in self.offered]
        return Locales(
            offered=offered,
            default=self.default if self.default in offered else offered[0],
            by_region=[rule for rule in self.by_region if rule.locale in offered],
        )


def amazon_locale(
    order: Order, request: ReturnRequest, locales: Locales, marketplace: str, trace: Trace
) -> Locale:
    """An Amazon reply's language. Amazon gives no buyer language; the region only where it is known
    without asking for the buyer's address (the service never does), else the marketplace's language.
    """
    if len(locales.offered) == 1:
        only = locales.offered[0]
        if request.locale is not None and request.locale is not only:
            trace.add("locale", f"{request.locale} asked, but {marketplace} replies are in {only} only")
        else:
            trace.add("locale", f"{only}: {marketplace}")
        return only
    chosen = _asked(request, locales, f"{marketplace} replies", trace) or _by_region(order, locales, trace)
    if chosen is not None:
        return chosen
    trace.add("locale", f"{locales.default}: {marketplace}'s language (the buyer's province is not known)")
    return locales.default


def merchant_locale(order: Order, request: ReturnRequest, locales: Locales, trace: Trace) -> Locale:
    """The request's locale, else the checkout language, else the region's language, else the default.

    `Order.customer_locale` is what the customer chose at checkout; the customer record's own locale
    defaults to the shop's language, which is why connectors do not use it.
    """
    chosen = _asked(request, locales, "the shop answers", trace)
    if chosen is not None:
        return chosen
    if order.customer_locale:
        chosen = _by_language(order.customer_locale, locales)
        if chosen is not None:
            trace.add("locale", f"{chosen}: the customer chose {order.customer_locale!r} at checkout")
            return chosen
    chosen = _by_region(order, locales, trace)
    if chosen is not None:
        return chosen
    trace.add("locale", f"{locales.default}: the shop's default")
    return locales.default


def _asked(request: ReturnRequest, locales: Locales, who: str, trace: Trace) -> Locale | None:
    if request.locale is None:
        return None
    if request.locale in locales.offered:
        trace.add("locale", f"{request.locale}: asked by the request")
        return request.locale
    same_language = _by_language(request.locale.value, locales)
    if same_language is not None:
        trace.add("locale", f"{same_language}: {request.locale} asked, {who} in {same_language}")
    return same_language


def _by_region(order: Order, locales: Locales, trace: Trace) -> Locale | None:
    for rule in locales.by_region:
        country_matches = order.ship_to_country is None or order.ship_to_country.upper() == rule.country
        if country_matches and (order.ship_to_region or "").upper() == rule.region:
            trace.add("locale", f"{rule.locale}: the order ships to {rule.country}-{rule.region}")
            return rule.locale
    return None


def _by_language(tag: str, locales: Locales) -> Locale | None:
    language = tag.replace("_", "-").split("-")[0].casefold()
    return next((locale for locale in locales.offered if locale.value.split("-")[0] == language), None)
