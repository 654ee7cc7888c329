"""Builders for the policy tests: orders, requests and markets as plain values (the policy does no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from app.domain import Fulfillment, Market, Money, Order, OrderLine, Platform, ReturnRequest
from app.policy import PolicyBook, Verdict

LA = ZoneInfo("America/Los_Angeles")
TORONTO = ZoneInfo("America/Toronto")

AMAZON_US = Market(
    channel="amazon_us", platform=Platform.amazon, zone=LA, transit_days=5, policy="amazon-us", currency="USD"
)
SHOPIFY_CA = Market(channel="shopify_ca", platform=Platform.shopify, zone=TORONTO, transit_days=5)


def la(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LA)


def toronto(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TORONTO)


def line(
    sku: str, price: str, quantity: int = 1, *, title: str | None = None, tags: Sequence[str] = ()
) -> OrderLine:
    currency = "CAD" if price.endswith(" CAD") else "USD"
    return OrderLine(
        line_id=f"line-{sku}",
        sku=sku,
        title=title or sku.title(),
        quantity=quantity,
        unit_price=Money(amount=Decimal(price.removesuffix(" CAD")), currency=currency),
        tags=list(tags),
    )


def amazon_order(**overrides: Any) -> Order:
    """An Amazon US, seller-fulfilled order, placed and delivered in October 2026 (no holiday period)."""
    lines = overrides.pop("lines", [line("KET-01", "59.99", title="Kettle")])
    fields: dict[str, Any] = {
        "channel": "amazon_us",
        "platform": Platform.amazon,
        "order_ref": "113-4567890-1234567",
        "order_id": "113-4567890-1234567",
        "placed_at": la(2026, 10, 1, 9, 0),
        "delivered_at": la(2026, 10, 5, 14, 0),
        "delivered_at_source": "promised",
        "fulfillment": Fulfillment.merchant,
        "currency": overrides.get("currency", "USD"),
        "total": _total(lines, overrides.get("currency", "USD")),
        "lines": lines,
    }
    return Order.model_validate({**fields, **overrides})


def shopify_order(**overrides: Any) -> Order:
    """A Shopify CA order shipped to Ontario, placed and delivered in October 2026 (no holiday period)."""
    lines = overrides.pop("lines", [line("MUG-01", "18.50 CAD", title="Mug")])
    fields: dict[str, Any] = {
        "channel": "shopify_ca",
        "platform": Platform.shopify,
        "order_ref": "#1001",
        "order_id": "gid://shopify/Order/450789469",
        "placed_at": toronto(2026, 10, 1, 9, 0),
        "delivered_at": toronto(2026, 10, 5, 14, 0),
        "delivered_at_source": "carrier",
        "fulfillment": Fulfillment.shopify,
        "currency": overrides.get("currency", "CAD"),
        "total": _total(lines, overrides.get("currency", "CAD")),
        "ship_to_country": "CA",
        "ship_to_region": "ON",
        "lines": lines,
    }
    return Order.model_validate({**fields, **overrides})


def _total(lines: Sequence[OrderLine], currency: str) -> Money:
    total = Money(amount=Decimal(0), currency=currency)
    for order_line in lines:
        total = total + order_line.unit_price.times(order_line.quantity)
    return total


def request_for(order: Order, **fields: Any) -> ReturnRequest:
    return ReturnRequest.model_validate({"order_ref": order.order_ref, **fields})


@dataclass(frozen=True)
class Decide:
    book: PolicyBook

    def __call__(self, order: Order, as_of: datetime, **request: Any) -> Verdict:
        market = AMAZON_US if order.platform is Platform.amazon else SHOPIFY_CA
        return self.book.decide(order, request_for(order, **request), market, as_of)


def rules(verdict: Verdict) -> list[str]:
    return [step.rule for step in verdict.explanation]


def result_of(verdict: Verdict, rule: str) -> str:
    return next(step.result for step in verdict.explanation if step.rule == rule)
