"""The sample answers Amazon and Shopify publish, through the normalisers: every one is read, none is a 502.

The samples are in `tests/fixtures/published/` with their sources (SOURCES.md). Where a test needs a
shape no published sample has (a field the model leaves optional, left out), it derives it from a
published sample here, in the test, and says so.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import graphql
import pytest

from app.channels import AmazonChannel, ShopifyChannel
from app.connectors.amazon_orders import order_from_amazon
from app.connectors.shopify_orders import ORDER_BY_ID_QUERY, order_from_shopify
from app.domain import DeliverySource, Fulfillment, Money
from tests.connectors.conftest import PUBLISHED

AMAZON = PUBLISHED / "amazon"
SHOPIFY = PUBLISHED / "shopify"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _published_amazon_orders() -> dict[str, dict[str, Any]]:
    """Every order in the published getOrder and searchOrders answers (examples and sandbox), by id."""
    orders: dict[str, dict[str, Any]] = {}
    for path in sorted(AMAZON.glob("*Order*.json")):
        if ".sandbox.400." in path.name or path.name.startswith("OrderChange"):
            continue
        body = _json(path)
        answer = body["response"] if ".sandbox." in path.name else body
        for order in [answer["order"]] if "order" in answer else answer["orders"]:
            orders[order["orderId"]] = order
    return orders


AMAZON_ORDERS = _published_amazon_orders()
EXAMPLE = "202-1234567-8901234"  # getOrder's documented example: Amazon.co.uk, seller-fulfilled, shipped


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# order id: fulfilment, currency, total, (sku, quantity, unit price) per line, delivery and its source
EXPECTED: dict[
    str, tuple[Fulfillment, str, str, list[tuple[str, int, str]], str | None, DeliverySource | None]
] = {
    # getOrder: the example and the sandbox answers
    EXAMPLE: (
        Fulfillment.merchant,
        "GBP",
        "103.97",
        [("ECHO-DOT-4-UK-CHARCOAL-3PACK", 3, "29.99")],
        "2024-12-30T23:59:59+00:00",
        DeliverySource.promised,
    ),
    "171-9876543-2109876": (
        Fulfillment.merchant,
        "BRL",
        "299.90",
        [("ECHO-DOT-4-BR-PRETO", 1, "299.90")],
        None,
        None,
    ),
    "028-1234567-8901234": (
        Fulfillment.merchant,
        "TRY",
        "125.00",
        [("FIRE-HD10-TR-BLK", 2, "62.50")],
        "2025-03-21T23:59:59+00:00",
        DeliverySource.promised,
    ),
    "114-9876543-1234567": (
        Fulfillment.merchant,
        "USD",
        "49.99",
        [("ECHO-POP-US-BLK", 1, "39.99")],
        None,
        None,
    ),
    # searchOrders: the example and the sandbox answers
    "123-4567890-1234567": (
        Fulfillment.merchant,
        "USD",
        "154.99",
        [("ECHO-DOT-4-CHARCOAL", 2, "49.99"), ("FIRE-TV-4K-2021", 1, "49.99")],
        "2024-12-30T23:59:59+00:00",
        DeliverySource.promised,
    ),
    "202-7654321-1098765": (
        Fulfillment.merchant,
        "GBP",
        "34.99",
        [("ECHO-DOT-4-UK-CHARCOAL-SINGLE", 1, "34.99")],
        "2024-12-28T23:59:59+00:00",
        DeliverySource.promised,
    ),
    # FBA in Japan: no promise, no packages; the ship-by window's end plus the channel's 5 days.
    "250-1234567-8901234": (
        Fulfillment.amazon,
        "JPY",
        "19940",
        [("ECHO-DOT-4-JP-CHARCOAL", 1, "5980"), ("FIRE-TV-4K-MAX-JP", 2, "6980")],
        "2024-12-30T23:59:59+00:00",
        DeliverySource.estimated,
    ),
    "171-2345678-9012345": (
        Fulfillment.merchant,
        "BRL",
        "1599.90",
        [("DELL-I15-BR-001", 1, "1599.90")],
        None,
        None,
    ),
}


def test_every_published_order_is_expected_here() -> None:
    assert set(AMAZON_ORDERS) == set(EXPECTED)


@pytest.mark.parametrize("order_id", sorted(EXPECTED))
def test_published_amazon_order_normalises(amazon_channel: AmazonChannel, order_id: str) -> None:
    fulfillment, currency, total, lines, delivered, source = EXPECTED[order_id]

    order = order_from_amazon({"order": AMAZON_ORDERS[order_id]}, amazon_channel)

    assert order.order_ref == order_id
    assert order.fulfillment is fulfillment
    assert (order.currency, order.total) == (currency, Money(amount=Decimal(total), currency=currency))
    assert [(line.sku, line.quantity, str(line.unit_price.amount)) for line in order.lines] == lines
    assert order.delivered_at == (at(delivered) if delivered else None)
    assert order.delivered_at_source is source
    assert order.missing == []
    # Money is written to the currency's minor unit in what the order answers (JPY has none).
    written = order.model_dump(mode="json")
    assert written["total"]["amount"] == total


# --- Published samples with what the model leaves optional taken out (derived here) -------


def _example() -> dict[str, Any]:
    return {"order": copy.deepcopy(AMAZON_ORDERS[EXAMPLE])}


def test_published_example_without_product_price(amazon_channel: AmazonChannel) -> None:
    body = _example()
    del body["order"]["orderItems"][0]["product"]["price"]  # its ITEM proceeds: 89.97 GBP for 3

    order = order_from_amazon(body, amazon_channel)

    assert order.lines[0].unit_price == Money(amount=Decimal("29.99"), currency="GBP")
    assert order.total == Money(amount=Decimal("103.97"), currency="GBP")
    assert order.missing == [
        "item 20212345678901: product.price not given; unit price 29.99 GBP "
        "from its proceeds (ITEM 89.97 / 3)"
    ]


def test_published_example_without_fulfilled_by(amazon_channel: AmazonChannel) -> None:
    body = _example()
    del body["order"]["fulfillment"]["fulfilledBy"]

    order = order_from_amazon(body, amazon_channel)

    assert order.fulfillment is Fulfillment.merchant
    assert order.missing == [
        "fulfillment.fulfilledBy: not given; taken as seller-fulfilled "
        "(it has packages, which only seller-fulfilled orders have)"
    ]


def test_published_example_with_every_optional_field_the_normaliser_reads_left_out(
    amazon_channel: AmazonChannel,
) -> None:
    body = _example()
    order_json = body["order"]
    for key in ("fulfillment", "packages", "proceeds"):
        del order_json[key]
    for item in order_json["orderItems"]:
        del item["proceeds"]
        for key in ("price", "sellerSku", "title"):
            del item["product"][key]

    order = order_from_amazon(body, amazon_channel)

    [line] = order.lines
    assert (line.sku, line.title, line.unit_price) == (
        None,
        "B08DFPV54V",
        Money.zero(amazon_channel.currency),
    )
    assert order.delivered_at_source is DeliverySource.estimated
    assert [note.split(":")[0] for note in order.missing] == [
        "fulfillment.fulfilledBy",
        "fulfillment",
        "item 20212345678901",
        "item 20212345678901",
        "proceeds.grandTotal",
    ]


# --- Shopify -----------------------------------------------------------------------


def test_a_pos_custom_sale_normalises_with_amounts_in_the_minor_unit(
    shopify_schema: graphql.GraphQLSchema, shopify_channel: ShopifyChannel
) -> None:
    # Hand-made (no published order answer exists): Shopify's own shapes, a custom sale line
    # without SKU or product and decimals as Shopify writes them ("43.0", "16.2").
    node = _json(SHOPIFY / "handmade" / "order-pos-custom-sale.json")
    result = graphql.execute_sync(
        shopify_schema,
        graphql.parse(ORDER_BY_ID_QUERY),
        root_value={"order": node},
        variable_values={"id": "x"},
    )
    assert result.errors is None
    assert result.data == {"order": node}  # exactly what the document answers, nothing more or less

    order = order_from_shopify(node, shopify_channel)

    custom, mug = order.lines
    assert (custom.line_id, custom.sku, custom.product_type, custom.tags) == (
        "gid://shopify/LineItem/1071823190",
        None,
        None,
        [],
    )
    assert mug.sku == "MUG-CER-12"
    written = order.model_dump(mode="json")
    assert written["total"] == {"amount": "59.20", "currency": "CAD"}
    assert [line["unit_price"]["amount"] for line in written["lines"]] == ["43.00", "16.20"]
    assert order.missing == []


def test_published_webhook_samples_write_decimals_as_shopify_does() -> None:
    # Why the normaliser pads: the published samples themselves carry one-decimal amounts.
    approve = (SHOPIFY / "webhooks" / "returns_approve.json").read_text(encoding="utf-8")
    assert '"amount": "10.0"' in approve


# --- Provenance --------------------------------------------------------------------


def test_every_published_fixture_has_its_source_noted() -> None:
    sources = (PUBLISHED / "SOURCES.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:amazon|shopify)/[\w./-]+\.json)`", sources))
    on_disk = {str(path.relative_to(PUBLISHED)) for path in PUBLISHED.rglob("*.json")}
    assert on_disk <= named, f"not in SOURCES.md: {sorted(on_disk - named)}"
    assert named <= on_disk, f"SOURCES.md names files that are not here: {sorted(named - on_disk)}"
