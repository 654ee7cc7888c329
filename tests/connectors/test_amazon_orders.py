"""SP-API Orders 2026-01-01 fixtures against the official model, and their normalisation into `Order`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from app.channels import AmazonChannel
from app.connectors.amazon_orders import INCLUDED_DATA, channel_of, order_from_amazon
from app.domain import DeliverySource, Fulfillment, Money, Platform
from app.errors import UnsupportedMarketplace, UpstreamError
from tests.connectors.conftest import ALL_AMAZON_FIXTURES, AMAZON_FIXTURES

Payload = Callable[[str], dict[str, Any]]
KETTLE = "113-4567890-1234567"
FBA_TWO_LINES = "112-3344556-7788990"
OLD_MERCHANT = "114-2233445-5667788"
UNSHIPPED = "111-9988776-6554433"
FBA_HOLIDAY = "115-6677889-9001122"
NO_PROMISE = "116-1122334-4556677"


def _strict(node: Any) -> Any:
    """The model with unknown properties forbidden, so a misspelt key in a fixture fails too."""
    if isinstance(node, dict):
        out = {key: _strict(value) for key, value in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(value) for value in node]
    return node


@pytest.fixture(scope="module")
def get_order_validator(amazon_orders_model: dict[str, Any]) -> jsonschema.Draft4Validator:
    # Swagger 2.0 definitions are JSON Schema draft 4 with extra keywords; `#/definitions/...` resolves
    # inside this one document.
    schema = {
        "$ref": "#/definitions/GetOrderResponse",
        "definitions": _strict(amazon_orders_model["definitions"]),
    }
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- The fixtures are real SP-API answers -------------------------------------------


def test_there_is_a_fixture_for_each_case() -> None:
    names = {path.stem for path in AMAZON_FIXTURES}
    assert {KETTLE, FBA_TWO_LINES, OLD_MERCHANT, UNSHIPPED, FBA_HOLIDAY, NO_PROMISE} <= names


@pytest.mark.parametrize("path", ALL_AMAZON_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture_validates_against_get_order_response(
    path: Any, get_order_validator: jsonschema.Draft4Validator
) -> None:
    body = json.loads(path.read_text(encoding="utf-8"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in get_order_validator.iter_errors(body)]
    assert errors == []
    assert body["order"]["orderId"] == path.stem
    # The service never asks for BUYER or RECIPIENT data, so an answer to it holds none.
    assert not {"buyer", "recipient"} & body["order"].keys()


def test_the_validator_rejects_what_the_model_does_not_allow(
    amazon_payload: Payload, get_order_validator: jsonschema.Draft4Validator
) -> None:
    missing_items = amazon_payload(KETTLE)
    del missing_items["order"]["orderItems"]
    misspelt = amazon_payload(KETTLE)
    misspelt["order"]["fulfillment"]["fulfilmentStatus"] = misspelt["order"]["fulfillment"].pop(
        "fulfillmentStatus"
    )
    bad_status = amazon_payload(KETTLE)
    bad_status["order"]["packages"][0]["packageStatus"]["status"] = "ARRIVED"

    for body in (missing_items, misspelt, bad_status):
        assert not get_order_validator.is_valid(body)


def test_included_data_asks_for_no_buyer_pii(amazon_orders_model: dict[str, Any]) -> None:
    parameters = amazon_orders_model["paths"]["/orders/2026-01-01/orders/{orderId}"]["get"]["parameters"]
    allowed = next(p for p in parameters if p["name"] == "includedData")["items"]["enum"]
    assert set(INCLUDED_DATA) <= set(allowed)
    assert not {"BUYER", "RECIPIENT"} & set(INCLUDED_DATA)


# --- Normalisation ------------------------------------------------------------------


def test_contract_example_kettle(amazon_payload: Payload, amazon_channel: AmazonChannel) -> None:
    order = order_from_amazon(amazon_payload(KETTLE), amazon_channel)

    assert order.channel == "amazon_us"
    assert order.platform is Platform.amazon
    assert order.order_ref == order.order_id == KETTLE
    assert order.fulfillment is Fulfillment.merchant
    assert order.placed_at == at("2026-11-20T10:00:00+00:00")
    assert order.shipped_at == at("2026-11-21T16:30:00+00:00")
    assert order.delivered_at == at("2026-11-24T18:00:00+00:00")
    assert order.delivered_at_source is DeliverySource.promised
    assert order.currency == "USD"
    assert order.total == Money(amount=Decimal("59.99"), currency="USD")
    assert isinstance(order.total.amount, Decimal)
    assert order.ship_to_region is None
    assert order.ship_to_country is None
    assert order.earlier_returns_at == []
    assert order.sandbox is False
    [line] = order.lines
    assert (line.line_id, line.sku, line.title, line.quantity) == (
        "14529187364201",
        "KET-01",
        "Stainless Steel Electric Kettle 1.7L",
        1,
    )
    assert line.unit_price == Money(amount=Decimal("59.99"), currency="USD")
    assert line.presentment_unit_price is None


def test_sandbox_flag_is_passed_through(amazon_payload: Payload, amazon_channel: AmazonChannel) -> None:
    assert order_from_amazon(amazon_payload(KETTLE), amazon_channel, sandbox=True).sandbox is True


def test_fba_order_with_two_lines(amazon_payload: Payload, amazon_channel: AmazonChannel) -> None:
    order = order_from_amazon(amazon_payload(FBA_TWO_LINES), amazon_channel)

    assert order.fulfillment is Fulfillment.amazon
    assert [(line.sku, line.quantity, line.unit_price.amount) for line in order.lines] == [
        ("BAKE-MAT-2", 2, Decimal("14.99")),
        ("SCALE-05", 1, Decimal("24.99")),
    ]
    assert order.total.amount == Decimal("54.97")
    assert order.delivered_at_source is DeliverySource.promised
    # The promise ends on 2026-10-09 in the channel's time zone, so the 30-day window ended 2026-11-08.
    assert order.delivered_at is not None
    assert order.delivered_at.astimezone(ZoneInfo("America/Los_Angeles")).date().isoformat() == "2026-10-09"


@pytest.mark.parametrize(
    ("order_id", "fulfillment", "placed"),
    [(OLD_MERCHANT, Fulfillment.merchant, "2026-09-01"), (FBA_HOLIDAY, Fulfillment.amazon, "2026-11-03")],
)
def test_fulfilment_kind_and_placing_date(
    amazon_payload: Payload,
    amazon_channel: AmazonChannel,
    order_id: str,
    fulfillment: Fulfillment,
    placed: str,
) -> None:
    order = order_from_amazon(amazon_payload(order_id), amazon_channel)
    assert order.fulfillment is fulfillment
    assert order.placed_at.date().isoformat() == placed
    assert order.shipped


def test_unshipped_order_has_no_delivery_even_with_a_promise(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    body = amazon_payload(UNSHIPPED)
    assert body["order"]["fulfillment"]["deliverByWindow"]["latestDateTime"]  # the promise is there

    order = order_from_amazon(body, amazon_channel)

    assert (order.shipped_at, order.delivered_at, order.delivered_at_source) == (None, None, None)
    assert not order.shipped


def test_no_promise_estimates_from_the_ship_time(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    order = order_from_amazon(amazon_payload(NO_PROMISE), amazon_channel)
    assert order.shipped_at == at("2026-11-16T19:45:00+00:00")
    assert order.delivered_at == at("2026-11-21T19:45:00+00:00")
    assert order.delivered_at_source is DeliverySource.estimated

    slower = dataclasses.replace(amazon_channel, transit_days=8)
    assert order_from_amazon(amazon_payload(NO_PROMISE), slower).delivered_at == at(
        "2026-11-24T19:45:00+00:00"
    )


def test_shipped_at_is_the_earliest_package(amazon_payload: Payload, amazon_channel: AmazonChannel) -> None:
    body = amazon_payload(FBA_TWO_LINES)
    first = body["order"]["packages"][0]
    body["order"]["packages"] = [
        {**first, "packageReferenceId": "later", "shipTime": "2026-10-07T10:00:00Z"},
        first,
        {"packageReferenceId": "not shipped yet"},
    ]
    assert order_from_amazon(body, amazon_channel).shipped_at == at("2026-10-06T03:45:00+00:00")


def test_a_package_ship_time_means_shipped_whatever_the_status(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    body = amazon_payload(NO_PROMISE)
    body["order"]["fulfillment"]["fulfillmentStatus"] = "UNSHIPPED"
    order = order_from_amazon(body, amazon_channel)
    assert order.shipped_at == at("2026-11-16T19:45:00+00:00")
    assert order.delivered_at_source is DeliverySource.estimated


def test_shipped_status_without_packages_estimates_from_the_ship_by_window(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    body = amazon_payload(NO_PROMISE)
    del body["order"]["packages"]
    body["order"]["fulfillment"]["fulfillmentStatus"] = "PARTIALLY_SHIPPED"

    order = order_from_amazon(body, amazon_channel)

    assert order.shipped_at is None
    assert order.delivered_at == at("2026-11-22T07:59:59+00:00")  # ship-by 2026-11-17T07:59:59Z + 5 days
    assert order.delivered_at_source is DeliverySource.estimated
    assert order.shipped


def test_total_falls_back_to_the_lines(amazon_payload: Payload, amazon_channel: AmazonChannel) -> None:
    body = amazon_payload(FBA_TWO_LINES)
    body["order"]["proceeds"]["grandTotal"] = {"amount": "60.12", "currencyCode": "USD"}
    assert order_from_amazon(body, amazon_channel).total.amount == Decimal("60.12")  # grandTotal wins

    del body["order"]["proceeds"]
    assert order_from_amazon(body, amazon_channel).total == Money(amount=Decimal("54.97"), currency="USD")


# --- What the model leaves optional is read around, and said ---------------------------


def test_a_complete_answer_misses_nothing(amazon_payload: Payload, amazon_channel: AmazonChannel) -> None:
    for order_id in (KETTLE, FBA_TWO_LINES, OLD_MERCHANT, UNSHIPPED, FBA_HOLIDAY, NO_PROMISE):
        assert order_from_amazon(amazon_payload(order_id), amazon_channel).missing == []


@pytest.mark.parametrize("order_id", [FBA_TWO_LINES, NO_PROMISE])
def test_without_fulfilled_by_the_order_is_taken_as_seller_fulfilled(
    amazon_payload: Payload, amazon_channel: AmazonChannel, order_id: str
) -> None:
    body = amazon_payload(order_id)
    del body["order"]["fulfillment"]["fulfilledBy"]
    has_packages = bool(body["order"].get("packages"))

    order = order_from_amazon(body, amazon_channel)

    assert order.fulfillment is Fulfillment.merchant
    why = "it has packages, which only seller-fulfilled orders have" if has_packages else "by default"
    assert order.missing == [f"fulfillment.fulfilledBy: not given; taken as seller-fulfilled ({why})"]
    # Nothing else changes: the rest of the answer is read as before.
    complete = order_from_amazon(amazon_payload(order_id), amazon_channel)
    assert (order.delivered_at, order.total, order.lines) == (
        complete.delivered_at,
        complete.total,
        complete.lines,
    )


def test_without_fulfillment_the_order_is_taken_as_shipped(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    body = amazon_payload(FBA_TWO_LINES)
    del body["order"]["fulfillment"], body["order"]["packages"]  # nothing says it shipped

    order = order_from_amazon(body, amazon_channel)

    assert order.shipped
    # No ship time and no promise: estimated from the order date (2026-10-05T14:12Z + 5 days).
    assert (order.delivered_at, order.delivered_at_source) == (
        at("2026-10-10T14:12:00+00:00"),
        DeliverySource.estimated,
    )
    assert order.missing == [
        "fulfillment.fulfilledBy: not given; taken as seller-fulfilled (by default)",
        "fulfillment: not given; the order is taken as shipped and its delivery estimated",
    ]


def test_without_a_price_the_unit_price_comes_from_the_item_proceeds(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    body = amazon_payload(FBA_TWO_LINES)
    del body["order"]["orderItems"][0]["product"]["price"]  # 2 x BAKE-MAT-2, ITEM proceeds 29.98
    body["order"]["orderItems"][1]["product"]["price"] = {"priceDesignation": "BUSINESS_PRICE"}

    order = order_from_amazon(body, amazon_channel)

    assert [(line.sku, line.unit_price) for line in order.lines] == [
        ("BAKE-MAT-2", Money(amount=Decimal("14.99"), currency="USD")),
        ("SCALE-05", Money(amount=Decimal("24.99"), currency="USD")),
    ]
    taken = "product.price not given; unit price {} USD from its proceeds (ITEM {} / {})"
    assert order.missing == [
        f"item 31877620491508: {taken.format('14.99', '29.98', 2)}",
        f"item 31877620491509: {taken.format('24.99', '24.99', 1)}",
    ]


def test_a_price_shared_unevenly_is_rounded_and_said_so(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    body = amazon_payload(KETTLE)
    item = body["order"]["orderItems"][0]
    del item["product"]["price"]
    item["quantityOrdered"] = 3
    item["proceeds"] = {
        "breakdowns": [{"type": "ITEM", "subtotal": {"amount": "10.0", "currencyCode": "USD"}}]
    }

    order = order_from_amazon(body, amazon_channel)

    assert order.lines[0].unit_price == Money(amount=Decimal("3.33"), currency="USD")
    [note] = order.missing
    assert note.endswith("unit price about 3.33 USD from its proceeds (ITEM 10.00 / 3)")


def test_without_a_price_or_proceeds_the_line_counts_nothing_and_says_so(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    body = amazon_payload(FBA_TWO_LINES)
    for item in body["order"]["orderItems"]:
        del item["product"]["price"], item["proceeds"]
    del body["order"]["proceeds"]

    order = order_from_amazon(body, amazon_channel)

    assert [line.unit_price for line in order.lines] == [Money(amount=Decimal("0.00"), currency="USD")] * 2
    assert order.total == Money(amount=Decimal("0.00"), currency="USD")
    assert order.missing == [
        "item 31877620491508: product.price not given, nor its proceeds; its value is taken as 0",
        "item 31877620491509: product.price not given, nor its proceeds; its value is taken as 0",
        "proceeds.grandTotal: not given; the total is the lines' sum, 0.00 USD",
    ]


def test_a_line_without_price_takes_the_currency_of_the_order(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    body = amazon_payload(FBA_TWO_LINES)
    body["order"]["proceeds"]["grandTotal"] = {"amount": "70.0", "currencyCode": "CAD"}
    for item in body["order"]["orderItems"]:
        del item["product"]["price"], item["proceeds"]

    order = order_from_amazon(body, amazon_channel)  # a USD channel, a CAD order

    assert order.currency == "CAD"
    assert order.total == Money(amount=Decimal("70.00"), currency="CAD")
    assert {line.unit_price.currency for line in order.lines} == {"CAD"}


def test_a_line_without_sku_is_known_by_its_item_id(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    body = amazon_payload(KETTLE)
    del body["order"]["orderItems"][0]["product"]["sellerSku"]

    order = order_from_amazon(body, amazon_channel)

    [line] = order.lines
    assert (line.line_id, line.sku, line.title) == (
        "14529187364201",
        None,
        "Stainless Steel Electric Kettle 1.7L",
    )
    assert order.missing == [
        "item 14529187364201: product.sellerSku not given; the line is known by its item id"
    ]


def test_amounts_are_written_to_the_minor_unit(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    body = amazon_payload(KETTLE)
    body["order"]["orderItems"][0]["product"]["price"]["unitPrice"]["amount"] = "59.9"
    body["order"]["proceeds"]["grandTotal"]["amount"] = "59.9"

    order = order_from_amazon(body, amazon_channel)

    assert order.model_dump(mode="json")["total"] == {"amount": "59.90", "currency": "USD"}
    assert order.model_dump(mode="json")["lines"][0]["unit_price"] == {"amount": "59.90", "currency": "USD"}


def test_times_keep_their_instant(amazon_payload: Payload, amazon_channel: AmazonChannel) -> None:
    body = amazon_payload(KETTLE)
    body["order"]["createdTime"] = "2026-11-20T02:00:00-08:00"
    assert order_from_amazon(body, amazon_channel).placed_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


# --- Malformed answers are upstream errors, never KeyError ---------------------------


def _drop(*path: str | int) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        node: Any = body
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _set(value: Any, *path: str | int) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        node: Any = body
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


PRICE = ("order", "orderItems", 0, "product", "price", "unitPrice")


@pytest.mark.parametrize(
    ("mutate", "mentions"),
    [
        (_drop("order"), "order is missing"),
        (_set([], "order"), "order is not an object"),
        (_drop("order", "orderId"), "orderId"),
        (_drop("order", "createdTime"), "createdTime"),
        (_set("yesterday", "order", "createdTime"), "createdTime"),
        (_set("2026-11-20T10:00:00", "order", "createdTime"), "no UTC offset"),
        (_drop("order", "fulfillment", "fulfillmentStatus"), "fulfillmentStatus"),
        (_set("SOMEONE_ELSE", "order", "fulfillment", "fulfilledBy"), "SOMEONE_ELSE"),
        (_drop("order", "orderItems"), "orderItems"),
        (_set({"orderItemId": "1"}, "order", "orderItems"), "orderItems is not a list"),
        (_drop("order", "orderItems", 0, "product"), "product"),
        (_set("1", "order", "orderItems", 0, "quantityOrdered"), "quantityOrdered"),
        (_set([], "order", "orderItems", 0, "product", "price"), "price is not an object"),
        (_set("12,50", *PRICE, "amount"), "12,50"),
        (_set("NaN", *PRICE, "amount"), "NaN"),
        (_set(59.99, *PRICE, "amount"), "amount"),
        (_set("usd", *PRICE, "currencyCode"), "usd"),
        (_set("CAD", *PRICE, "currencyCode"), "CAD"),
        (_set({"amount": "1e", "currencyCode": "USD"}, "order", "proceeds", "grandTotal"), "1e"),
        (_set("soon", "order", "packages", 0, "shipTime"), "shipTime"),
    ],
)
def test_malformed_payload_is_an_upstream_error(
    amazon_payload: Payload,
    amazon_channel: AmazonChannel,
    mutate: Callable[[dict[str, Any]], None],
    mentions: str,
) -> None:
    body = amazon_payload(KETTLE)
    mutate(body)
    with pytest.raises(UpstreamError) as caught:
        order_from_amazon(body, amazon_channel)
    assert mentions in caught.value.detail
    assert caught.value.status == 502


# --- Which channel of a seller account an order belongs to ---------------------------------


def _channels(amazon_channel: AmazonChannel) -> list[AmazonChannel]:
    ca = dataclasses.replace(amazon_channel, key="amazon_ca", marketplace_id="A2EUQ1WTGCTBG2", currency="CAD")
    return [amazon_channel, ca]


def test_the_marketplace_picks_the_channel(amazon_payload: Payload, amazon_channel: AmazonChannel) -> None:
    us, ca = _channels(amazon_channel)
    body = amazon_payload(KETTLE)

    assert channel_of(body, [us, ca]) == (us, [])
    body["order"]["salesChannel"]["marketplaceId"] = "A2EUQ1WTGCTBG2"
    assert channel_of(body, [us, ca]) == (ca, [])


def test_a_marketplace_without_a_channel_is_unsupported(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    body = amazon_payload(KETTLE)
    body["order"]["salesChannel"]["marketplaceId"] = "A1AM78C64UM0Y8"

    with pytest.raises(UnsupportedMarketplace) as raised:
        channel_of(body, _channels(amazon_channel))

    assert raised.value.extra == {"marketplace_id": "A1AM78C64UM0Y8"}
    assert raised.value.detail == (
        "Amazon order 113-4567890-1234567 is from marketplace A1AM78C64UM0Y8 (Amazon.com.mx), which no "
        "channel is configured for (configured: ATVPDKIKX0DER for amazon_us, A2EUQ1WTGCTBG2 for amazon_ca); "
        "it is not decided under another marketplace's policy."
    )


def test_without_a_marketplace_the_currency_tells_the_channel_and_the_decision_says_so(
    amazon_payload: Payload, amazon_channel: AmazonChannel
) -> None:
    us, ca = _channels(amazon_channel)
    body = amazon_payload(KETTLE)
    del body["order"]["salesChannel"]["marketplaceId"]  # optional in the model

    chosen, assumed = channel_of(body, [us, ca])
    order = order_from_amazon(body, chosen, assumed=assumed)

    assert chosen is us
    assert order.missing == [
        "salesChannel.marketplaceId: not given; taken as ATVPDKIKX0DER (Amazon.com) of channel amazon_us "
        "(its currency, USD)"
    ]
    assert channel_of(body, [us])[1] == [
        "salesChannel.marketplaceId: not given; taken as ATVPDKIKX0DER (Amazon.com) of channel amazon_us "
        "(the seller account's only channel)"
    ]
    twin = dataclasses.replace(ca, key="amazon_us2", currency="USD")
    with pytest.raises(UnsupportedMarketplace, match="names no marketplace, and its currency"):
        channel_of(body, [us, twin])
