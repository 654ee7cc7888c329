"""The Shopify Admin GraphQL documents that read an order, and the normalisation of their answer.

The documents ask for no buyer PII: no names, emails, phones or address lines; only the province
and country of the shipping address. Validated against the 2026-01 schema in the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from app.channels import SHOPIFY_ORDER_GID, ShopifyChannel
from app.connectors import payload
from app.domain import DeliverySource, Fulfillment, Money, Order, OrderLine, Platform
from app.errors import UpstreamError

# `customer.orders` reads the customer's recent orders for their returns: Shopify cannot filter
# returns by date, and the review rule counts returns created in the 365 days before a date.
ORDER_FIELDS = """
fragment OrderFields on Order {
  id
  name
  createdAt
  displayFinancialStatus
  currencyCode
  presentmentCurrencyCode
  customerLocale
  totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
  shippingAddress { provinceCode countryCodeV2 }
  lineItems(first: 100) {
    nodes {
      id
      sku
      title
      quantity
      product { productType tags }
      originalUnitPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
    }
  }
  fulfillments(first: 50) { status createdAt inTransitAt estimatedDeliveryAt deliveredAt }
  customer {
    id
    orders(first: 50, sortKey: CREATED_AT, reverse: true) {
      nodes { id returns(first: 20) { nodes { createdAt } } }
    }
  }
}
"""

ORDER_BY_ID_QUERY = (
    """
query OrderById($id: ID!) {
  order(id: $id) { ...OrderFields }
}
"""
    + ORDER_FIELDS
)

ORDER_BY_NAME_QUERY = (
    """
query OrderByName($query: String!) {
  orders(first: 1, query: $query) { nodes { ...OrderFields } }
}
"""
    + ORDER_FIELDS
)

# Fulfilments that never left: they neither ship the order nor date its delivery.
_VOID_FULFILLMENT_STATUSES = frozenset({"CANCELLED", "ERROR", "FAILURE"})


@dataclass(frozen=True)
class OrderLookup:
    """One way to look an order up: by its GID, or by its name (`#1001`)."""

    by: Literal["id", "name"]
    value: str


def order_lookups(order_ref: str) -> list[OrderLookup]:
    """The lookups for a Shopify reference, in the order to try them (the contract's rule).

    A GID or a numeric id is looked up by id, `#1001` by name, and a bare number as an order name
    first (what customers quote), then as an order id.
    """
    ref = order_ref.strip()
    if gid := SHOPIFY_ORDER_GID.match(ref):
        return [OrderLookup("id", f"gid://shopify/Order/{gid.group(1)}")]
    if ref.startswith("#"):
        return [OrderLookup("name", ref)]
    return [OrderLookup("name", f"#{ref}"), OrderLookup("id", f"gid://shopify/Order/{ref}")]


def order_name_search(name: str) -> str:
    """The `query` variable of ORDER_BY_NAME_QUERY for an order name: `1001` or `#1001` → `name:#1001`."""
    return f"name:#{name.removeprefix('#')}"


def order_from_shopify(node: Mapping[str, Any], channel: ShopifyChannel, *, sandbox: bool = False) -> Order:
    """The `Order` for the `order` node the documents above answer; `UpstreamError` when malformed."""
    node = payload.as_object(node, "Shopify order")
    order_id = payload.text(node, "id", "Shopify order")
    where = f"Shopify order {order_id}"
    try:
        return _order(node, order_id, channel, sandbox, where)
    except ValidationError as exc:
        raise UpstreamError(f"{where}: {payload.validation_detail(exc)}") from exc


def _order(
    node: Mapping[str, Any], order_id: str, channel: ShopifyChannel, sandbox: bool, where: str
) -> Order:
    currency = payload.text(node, "currencyCode", where)
    presentment_currency = payload.text(node, "presentmentCurrencyCode", where)
    total = payload.money(payload.obj(node, "totalPriceSet", where), "shopMoney", f"{where}: totalPriceSet")
    line_nodes = payload.array(payload.obj(node, "lineItems", where), "nodes", f"{where}: lineItems")
    address = payload.optional_obj(node, "shippingAddress", where) or {}
    placed_at = payload.timestamp(node, "createdAt", where)
    shipped_at, delivered_at, source = _shipping(node, channel, where)
    return Order(
        channel=channel.key,
        platform=Platform.shopify,
        order_ref=payload.text(node, "name", where),
        order_id=order_id,
        placed_at=placed_at,
        shipped_at=shipped_at,
        delivered_at=delivered_at,
        delivered_at_source=source,
        fulfillment=Fulfillment.shopify,
        currency=currency,
        presentment_currency=presentment_currency,
        total=_in_currency(total, currency, f"{where}: totalPriceSet.shopMoney"),
        ship_to_country=payload.optional_text(address, "countryCodeV2", f"{where}: shippingAddress"),
        ship_to_region=payload.optional_text(address, "provinceCode", f"{where}: shippingAddress"),
        customer_locale=payload.optional_text(node, "customerLocale", where),
        earlier_returns_at=_earlier_returns(node, order_id, where),
        lines=[_line(raw, currency, presentment_currency, where) for raw in line_nodes],
        sandbox=sandbox,
    )


def _shipping(
    node: Mapping[str, Any], channel: ShopifyChannel, where: str
) -> tuple[datetime | None, datetime | None, DeliverySource | None]:
    """Shipped at, delivered at and how the delivery time is known."""
    fulfillments = [
        f
        for f in (
            payload.as_object(raw, f"{where}: fulfillment")
            for raw in payload.array(node, "fulfillments", where)
        )
        if f.get("status") not in _VOID_FULFILLMENT_STATUSES
    ]
    if not fulfillments:
        return None, None, None
    here = f"{where}: fulfillment"
    shipped_at = min(payload.timestamp(f, "createdAt", here) for f in fulfillments)
    # The order is delivered when its last parcel is: the latest time of each kind wins.
    delivered = [t for f in fulfillments if (t := payload.optional_timestamp(f, "deliveredAt", here))]
    if delivered:
        return shipped_at, max(delivered), DeliverySource.carrier
    promised = [t for f in fulfillments if (t := payload.optional_timestamp(f, "estimatedDeliveryAt", here))]
    if promised:
        return shipped_at, max(promised), DeliverySource.promised
    return shipped_at, shipped_at + timedelta(days=channel.transit_days), DeliverySource.estimated


def _line(raw: Any, currency: str, presentment_currency: str, where: str) -> OrderLine:
    item = payload.as_object(raw, f"{where}: line item")
    line_id = payload.text(item, "id", f"{where}: line item")
    here = f"{where}: line {line_id}"
    prices = payload.obj(item, "originalUnitPriceSet", here)
    # Line items have no tags of their own: `final-sale` and the like are product tags.
    product = payload.optional_obj(item, "product", here) or {}
    tags = payload.array(product, "tags", f"{here}: product", required=False)
    if not all(isinstance(tag, str) for tag in tags):
        raise UpstreamError(f"{here}: product.tags holds a non-string")
    presentment_price = None
    if presentment_currency != currency:
        presentment_price = _in_currency(
            payload.money(prices, "presentmentMoney", f"{here}: originalUnitPriceSet"),
            presentment_currency,
            f"{here}: originalUnitPriceSet.presentmentMoney",
        )
    return OrderLine(
        line_id=line_id,
        sku=payload.optional_text(item, "sku", here),
        title=payload.text(item, "title", here),
        quantity=payload.count(item, "quantity", here),
        unit_price=_in_currency(
            payload.money(prices, "shopMoney", f"{here}: originalUnitPriceSet"),
            currency,
            f"{here}: originalUnitPriceSet.shopMoney",
        ),
        presentment_unit_price=presentment_price,
        product_type=payload.optional_text(product, "productType", f"{here}: product"),
        tags=list(tags),
    )


def _earlier_returns(node: Mapping[str, Any], order_id: str, where: str) -> list[datetime]:
    """When the customer's returns on their other orders were created, oldest first."""
    customer = payload.optional_obj(node, "customer", where)
    if customer is None:  # a guest checkout: no history to read
        return []
    here = f"{where}: customer"
    orders = payload.array(payload.obj(customer, "orders", here), "nodes", f"{here}.orders")
    created: list[datetime] = []
    for raw in orders:
        other = payload.as_object(raw, f"{here}: order")
        # This order's own returns are not "earlier returns" of the customer.
        if payload.text(other, "id", f"{here}: order") == order_id:
            continue
        returns = payload.array(payload.obj(other, "returns", f"{here}: order"), "nodes", f"{here}: returns")
        for ret in returns:
            created.append(
                payload.timestamp(payload.as_object(ret, f"{here}: return"), "createdAt", f"{here}: return")
            )
    return sorted(created)


def _in_currency(money: Money, currency: str, where: str) -> Money:
    if money.currency != currency:
        raise UpstreamError(f"{where} is in {money.currency}, expected {currency}")
    return money
