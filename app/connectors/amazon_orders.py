"""Normalise an SP-API Orders 2026-01-01 `getOrder` answer into the service's `Order`.

Pure: no I/O. The live connector and the sandbox both feed it the same JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from app.channels import AmazonChannel, describe_marketplace
from app.connectors import payload
from app.domain import DeliverySource, Fulfillment, Money, Order, OrderLine, Platform
from app.errors import UnsupportedMarketplace, UpstreamError

# What `getOrder` is asked for. Never BUYER or RECIPIENT: the service keeps no buyer PII,
# which is also why Amazon orders have no ship-to region or country.
INCLUDED_DATA = ("FULFILLMENT", "PACKAGES", "PROCEEDS")

_FULFILLED_BY = {"AMAZON": Fulfillment.amazon, "MERCHANT": Fulfillment.merchant}
_SHIPPED_STATUSES = frozenset({"SHIPPED", "PARTIALLY_SHIPPED"})


def channel_of(body: Mapping[str, Any], channels: Sequence[AmazonChannel]) -> tuple[AmazonChannel, list[str]]:
    """The channel a `GetOrderResponse` belongs to, among one seller account's `channels`, and what was
    assumed to tell it (for `Order.missing`).

    The order's `salesChannel.marketplaceId` picks the channel. An order from a marketplace no channel
    sells on is `UnsupportedMarketplace`: it is never decided under another marketplace's policy.
    """
    order = payload.obj(payload.as_object(body, "getOrder response"), "order", "getOrder response")
    order_id = payload.text(order, "orderId", "Amazon order")
    where = f"Amazon order {order_id}"
    sales = payload.optional_obj(order, "salesChannel", where) or {}
    marketplace = payload.optional_text(sales, "marketplaceId", f"{where}: salesChannel")
    if marketplace is not None:
        chosen = next((channel for channel in channels if channel.marketplace_id == marketplace), None)
        if chosen is None:
            raise UnsupportedMarketplace(
                f"Amazon order {order_id} is from marketplace {describe_marketplace(marketplace)}, which no "
                f"channel is configured for ({_configured(channels)}); it is not decided under another "
                "marketplace's policy.",
                extra={"marketplace_id": marketplace},
            )
        return chosen, []
    # `marketplaceId` is optional in the model: the order's currency may still tell its marketplace.
    items = [
        payload.as_object(raw, f"{where}: order item") for raw in payload.array(order, "orderItems", where)
    ]
    currency = _currency(_grand_total(order, where), items, None, where)
    same_money = [channel for channel in channels if channel.currency == currency]
    if len(channels) == 1 or len(same_money) == 1:
        chosen = channels[0] if len(channels) == 1 else same_money[0]
        how = "the seller account's only channel" if len(channels) == 1 else f"its currency, {currency}"
        return chosen, [
            f"salesChannel.marketplaceId: not given; taken as {describe_marketplace(chosen.marketplace_id)} "
            f"of channel {chosen.key} ({how})"
        ]
    raise UnsupportedMarketplace(
        f"Amazon order {order_id} names no marketplace, and its currency ({currency or 'none'}) does not "
        f"tell which channel it belongs to ({_configured(channels)}).",
        extra={"marketplace_id": None},
    )


def _configured(channels: Sequence[AmazonChannel]) -> str:
    return "configured: " + ", ".join(f"{channel.marketplace_id} for {channel.key}" for channel in channels)


def order_from_amazon(
    body: Mapping[str, Any], channel: AmazonChannel, *, sandbox: bool = False, assumed: Sequence[str] = ()
) -> Order:
    """The `Order` in a `GetOrderResponse`; raises `UpstreamError` when the payload is malformed.

    `assumed` is what was taken for granted to find the order's channel; it heads `Order.missing`.
    """
    order = payload.obj(payload.as_object(body, "getOrder response"), "order", "getOrder response")
    order_id = payload.text(order, "orderId", "Amazon order")
    where = f"Amazon order {order_id}"
    try:
        return _order(order, order_id, channel, sandbox, where, list(assumed))
    except ValidationError as exc:
        raise UpstreamError(f"{where}: {payload.validation_detail(exc)}") from exc


def _order(
    order: Mapping[str, Any],
    order_id: str,
    channel: AmazonChannel,
    sandbox: bool,
    where: str,
    missing: list[str],
) -> Order:
    # What the model marks optional may be absent: the order is still read, and `missing` says what
    # was assumed instead so the decision can show it. Only what the model requires is a 502.
    placed_at = payload.timestamp(order, "createdTime", where)
    packages = [
        payload.as_object(p, f"{where}: package")
        for p in payload.array(order, "packages", where, required=False)
    ]
    fulfillment = payload.optional_obj(order, "fulfillment", where)
    fulfilled_by = _fulfilled_by(fulfillment or {}, packages, where, missing)
    ship_times = [
        t
        for p in packages
        if (t := payload.optional_timestamp(p, "shipTime", f"{where}: package")) is not None
    ]
    shipped_at = min(ship_times, default=None)
    if fulfillment is None:
        # Without its status the order could be unshipped; calling it so would refuse a return the
        # buyer may be owed, so it is taken as shipped and its delivery estimated.
        missing.append("fulfillment: not given; the order is taken as shipped and its delivery estimated")
        shipped = True
    else:
        status = payload.text(fulfillment, "fulfillmentStatus", f"{where}: fulfillment")
        shipped = bool(ship_times) or status in _SHIPPED_STATUSES
    if shipped:
        delivered_at, source = _delivery(fulfillment or {}, shipped_at, placed_at, channel, where)
    else:
        # A promised window on an unshipped order is only a promise: not a delivery.
        delivered_at, source = None, None

    items = [
        payload.as_object(raw, f"{where}: order item") for raw in payload.array(order, "orderItems", where)
    ]
    grand_total = _grand_total(order, where)
    currency = _currency(grand_total, items, channel, where) or channel.currency
    lines = [_line(item, currency, where, missing) for item in items]
    total = _total(grand_total, lines, currency, where, missing)
    return Order(
        channel=channel.key,
        platform=Platform.amazon,
        order_ref=order_id,
        order_id=order_id,
        placed_at=placed_at,
        shipped_at=shipped_at,
        delivered_at=delivered_at,
        delivered_at_source=source,
        fulfillment=fulfilled_by,
        currency=total.currency,
        total=total,
        ship_to_country=None,
        ship_to_region=None,
        lines=lines,
        sandbox=sandbox,
        updated_at=payload.optional_timestamp(order, "lastUpdatedTime", where),
        missing=missing,
    )


def _fulfilled_by(
    fulfillment: Mapping[str, Any], packages: Sequence[Mapping[str, Any]], where: str, missing: list[str]
) -> Fulfillment:
    fulfilled_by = payload.optional_text(fulfillment, "fulfilledBy", f"{where}: fulfillment")
    if fulfilled_by is not None:
        if fulfilled_by not in _FULFILLED_BY:
            raise UpstreamError(f"{where}: unknown fulfillment.fulfilledBy {fulfilled_by!r}")
        return _FULFILLED_BY[fulfilled_by]
    # The model gives packages to seller-fulfilled orders only. Without them the order is still
    # taken as seller-fulfilled: that keeps the seller's own duties (refund on arrival) in view,
    # where taking it as FBA would drop them.
    why = "it has packages, which only seller-fulfilled orders have" if packages else "by default"
    missing.append(f"fulfillment.fulfilledBy: not given; taken as seller-fulfilled ({why})")
    return Fulfillment.merchant


def _delivery(
    fulfillment: Mapping[str, Any],
    shipped_at: datetime | None,
    placed_at: datetime,
    channel: AmazonChannel,
    where: str,
) -> tuple[datetime, DeliverySource]:
    # 2026-01-01 has no delivery scan time: the end of the promised window is the best date.
    deliver_by = payload.optional_obj(fulfillment, "deliverByWindow", f"{where}: fulfillment")
    if deliver_by is not None and deliver_by.get("latestDateTime") is not None:
        return payload.timestamp(
            deliver_by, "latestDateTime", f"{where}: deliverByWindow"
        ), DeliverySource.promised
    # Shipped but no package ship time (PACKAGES withheld): the seller had to ship by the end of
    # the ship-by window, so estimate from there rather than call a shipped order unshipped.
    shipped_from = shipped_at
    ship_by = payload.optional_obj(fulfillment, "shipByWindow", f"{where}: fulfillment")
    if shipped_from is None and ship_by is not None:
        shipped_from = payload.optional_timestamp(ship_by, "latestDateTime", f"{where}: shipByWindow")
    return (shipped_from or placed_at) + timedelta(days=channel.transit_days), DeliverySource.estimated


def _line(item: Mapping[str, Any], currency: str, where: str, missing: list[str]) -> OrderLine:
    line_id = payload.text(item, "orderItemId", f"{where}: order item")
    here = f"{where}: item {line_id}"
    product = payload.obj(item, "product", here)
    sku = payload.optional_text(product, "sellerSku", f"{here}: product")
    if sku is None:
        missing.append(f"item {line_id}: product.sellerSku not given; the line is known by its item id")
    # `title` is optional in the model; the SKU or ASIN still lets an agent recognise the line.
    title = (
        payload.optional_text(product, "title", f"{here}: product") or sku or product.get("asin") or line_id
    )
    quantity = payload.count(item, "quantityOrdered", here)
    price = _listed_price(product, here)
    if price is None:
        price = _price_from_proceeds(item, quantity, currency, line_id, here, missing)
    return OrderLine(line_id=line_id, sku=sku, title=str(title), quantity=quantity, unit_price=price)


def _price_from_proceeds(
    item: Mapping[str, Any], quantity: int, currency: str, line_id: str, here: str, missing: list[str]
) -> Money:
    """The unit price of an item without `product.price`: its ITEM proceeds over its units, else 0."""
    subtotal = _item_subtotal(item, here)
    if subtotal is None or quantity == 0:
        missing.append(f"item {line_id}: product.price not given, nor its proceeds; its value is taken as 0")
        return Money.zero(currency)
    # What the buyer paid for the item before shipping and tax, shared over its units.
    unit = subtotal.amount / quantity
    price = Money(amount=unit, currency=subtotal.currency).rounded()
    about = "" if price.amount == unit else "about "
    missing.append(
        f"item {line_id}: product.price not given; unit price {about}{price.amount} {price.currency} "
        f"from its proceeds (ITEM {subtotal.amount} / {quantity})"
    )
    return price


def _listed_price(product: Mapping[str, Any], here: str) -> Money | None:
    price = payload.optional_obj(product, "price", f"{here}: product")
    if price is None or price.get("unitPrice") is None:
        return None
    return payload.money(price, "unitPrice", f"{here}: price")


def _item_subtotal(item: Mapping[str, Any], here: str) -> Money | None:
    """The ITEM share of the item's proceeds (PROCEEDS), if Amazon gave it."""
    proceeds = payload.optional_obj(item, "proceeds", here)
    if proceeds is None:
        return None
    for raw in payload.array(proceeds, "breakdowns", f"{here}: proceeds", required=False):
        breakdown = payload.as_object(raw, f"{here}: proceeds breakdown")
        if breakdown.get("type") == "ITEM":
            return payload.money(breakdown, "subtotal", f"{here}: proceeds breakdown")
    return None


def _grand_total(order: Mapping[str, Any], where: str) -> Money | None:
    proceeds = payload.optional_obj(order, "proceeds", where)
    if proceeds is None or proceeds.get("grandTotal") is None:
        return None
    return payload.money(proceeds, "grandTotal", f"{where}: proceeds")


def _currency(
    grand_total: Money | None, items: Sequence[Mapping[str, Any]], channel: AmazonChannel | None, where: str
) -> str | None:
    """The order's currency: its grand total's, else its first priced line's, else the channel's."""
    if grand_total is not None:
        return grand_total.currency
    for item in items:
        here = f"{where}: item {item.get('orderItemId')}"
        product = payload.optional_obj(item, "product", here) or {}
        price = _listed_price(product, here) or _item_subtotal(item, here)
        if price is not None:
            return price.currency
    return channel.currency if channel is not None else None


def _total(
    grand_total: Money | None, lines: Sequence[OrderLine], currency: str, where: str, missing: list[str]
) -> Money:
    if grand_total is not None:
        total = grand_total
    else:
        # PROCEEDS withheld: the lines' prices are the next best total.
        total = Money(
            amount=sum((line.unit_price.amount * line.quantity for line in lines), start=Decimal(0)),
            currency=currency,
        )
        missing.append(
            f"proceeds.grandTotal: not given; the total is the lines' sum, {total.amount} {currency}"
        )
    for line in lines:
        if line.unit_price.currency != total.currency:
            raise UpstreamError(
                f"{where}: item {line.line_id} is in {line.unit_price.currency}, the order {total.currency}"
            )
    return total
