"""Normalise an SP-API Orders 2026-01-01 `getOrder` answer into the service's `Order`.

Pure: no I/O. The live connector and the sandbox both feed it the same JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from app.channels import AmazonChannel
from app.connectors import payload
from app.domain import DeliverySource, Fulfillment, Money, Order, OrderLine, Platform
from app.errors import UpstreamError

# What `getOrder` is asked for. Never BUYER or RECIPIENT: the service keeps no buyer PII,
# which is also why Amazon orders have no ship-to region or country.
INCLUDED_DATA = ("FULFILLMENT", "PACKAGES", "PROCEEDS")

_FULFILLED_BY = {"AMAZON": Fulfillment.amazon, "MERCHANT": Fulfillment.merchant}
_SHIPPED_STATUSES = frozenset({"SHIPPED", "PARTIALLY_SHIPPED"})


def order_from_amazon(body: Mapping[str, Any], channel: AmazonChannel, *, sandbox: bool = False) -> Order:
    """The `Order` in a `GetOrderResponse`; raises `UpstreamError` when the payload is malformed."""
    order = payload.obj(payload.as_object(body, "getOrder response"), "order", "getOrder response")
    order_id = payload.text(order, "orderId", "Amazon order")
    where = f"Amazon order {order_id}"
    try:
        return _order(order, order_id, channel, sandbox, where)
    except ValidationError as exc:
        raise UpstreamError(f"{where}: {payload.validation_detail(exc)}") from exc


def _order(
    order: Mapping[str, Any], order_id: str, channel: AmazonChannel, sandbox: bool, where: str
) -> Order:
    fulfillment = payload.obj(order, "fulfillment", where)
    fulfilled_by = payload.text(fulfillment, "fulfilledBy", f"{where}: fulfillment")
    if fulfilled_by not in _FULFILLED_BY:
        raise UpstreamError(f"{where}: unknown fulfillment.fulfilledBy {fulfilled_by!r}")
    status = payload.text(fulfillment, "fulfillmentStatus", f"{where}: fulfillment")

    placed_at = payload.timestamp(order, "createdTime", where)
    packages = [
        payload.as_object(p, f"{where}: package")
        for p in payload.array(order, "packages", where, required=False)
    ]
    ship_times = [
        t
        for p in packages
        if (t := payload.optional_timestamp(p, "shipTime", f"{where}: package")) is not None
    ]
    shipped_at = min(ship_times, default=None)
    if ship_times or status in _SHIPPED_STATUSES:
        delivered_at, source = _delivery(fulfillment, shipped_at, placed_at, channel, where)
    else:
        # A promised window on an unshipped order is only a promise: not a delivery.
        delivered_at, source = None, None

    lines = [_line(item, where) for item in payload.array(order, "orderItems", where)]
    total = _total(order, lines, channel, where)
    return Order(
        channel=channel.key,
        platform=Platform.amazon,
        order_ref=order_id,
        order_id=order_id,
        placed_at=placed_at,
        shipped_at=shipped_at,
        delivered_at=delivered_at,
        delivered_at_source=source,
        fulfillment=_FULFILLED_BY[fulfilled_by],
        currency=total.currency,
        total=total,
        ship_to_country=None,
        ship_to_region=None,
        lines=lines,
        sandbox=sandbox,
    )


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


def _line(raw: Any, where: str) -> OrderLine:
    item = payload.as_object(raw, f"{where}: order item")
    line_id = payload.text(item, "orderItemId", f"{where}: order item")
    here = f"{where}: item {line_id}"
    product = payload.obj(item, "product", here)
    sku = payload.optional_text(product, "sellerSku", f"{here}: product")
    # `title` is optional in the model; the SKU or ASIN still lets an agent recognise the line.
    title = (
        payload.optional_text(product, "title", f"{here}: product") or sku or product.get("asin") or line_id
    )
    return OrderLine(
        line_id=line_id,
        sku=sku,
        title=str(title),
        quantity=payload.count(item, "quantityOrdered", here),
        unit_price=payload.money(
            payload.obj(product, "price", f"{here}: product"), "unitPrice", f"{here}: price"
        ),
    )


def _total(order: Mapping[str, Any], lines: Sequence[OrderLine], channel: AmazonChannel, where: str) -> Money:
    proceeds = payload.optional_obj(order, "proceeds", where)
    if proceeds is not None and proceeds.get("grandTotal") is not None:
        total = payload.money(proceeds, "grandTotal", f"{where}: proceeds")
    else:
        # PROCEEDS withheld: the lines' prices are the next best total.
        currency = lines[0].unit_price.currency if lines else channel.currency
        total = Money(
            amount=sum((line.unit_price.amount * line.quantity for line in lines), start=Decimal(0)),
            currency=currency,
        )
    for line in lines:
        if line.unit_price.currency != total.currency:
            raise UpstreamError(
                f"{where}: item {line.line_id} is in {line.unit_price.currency}, the order {total.currency}"
            )
    return total
