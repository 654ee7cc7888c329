"""The Shopify order documents against the Admin schema, the fixtures as their answers, and normalisation."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import graphql
import pytest
from graphql.validation import NoDeprecatedCustomRule

from app.channels import ShopifyChannel
from app.connectors.shopify_orders import (
    ORDER_BY_ID_QUERY,
    ORDER_BY_NAME_QUERY,
    order_from_shopify,
    order_name_search,
)
from app.domain import DeliverySource, Fulfillment, Money, Platform
from app.errors import UpstreamError
from tests.connectors.conftest import SHOPIFY_FIXTURES

Node = Callable[[str], dict[str, Any]]
DOCUMENTS = {"by_id": ORDER_BY_ID_QUERY, "by_name": ORDER_BY_NAME_QUERY}
PII_FIELDS = {
    "email",
    "phone",
    "firstName",
    "lastName",
    "displayName",
    "address1",
    "address2",
    "city",
    "zip",
    "company",
    "billingAddress",
    "defaultAddress",
    "addresses",
    "note",
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- The documents ------------------------------------------------------------------


@pytest.mark.parametrize("document", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_document_validates_against_the_schema(shopify_schema: graphql.GraphQLSchema, document: str) -> None:
    rules = [*graphql.specified_rules, NoDeprecatedCustomRule]
    assert graphql.validate(shopify_schema, graphql.parse(document), rules) == []


def test_validation_catches_unknown_and_deprecated_fields(shopify_schema: graphql.GraphQLSchema) -> None:
    rules = [*graphql.specified_rules, NoDeprecatedCustomRule]
    unknown = ORDER_BY_ID_QUERY.replace("customerLocale", "customerLanguage")
    deprecated = ORDER_BY_ID_QUERY.replace("countryCodeV2", "countryCode")
    for document in (unknown, deprecated):
        assert graphql.validate(shopify_schema, graphql.parse(document), rules) != []


def _selections(document: str) -> dict[str, set[str]]:
    """For each field path (`order.shippingAddress`), the names of the fields selected under it."""
    parsed = graphql.parse(document)
    fragments = {d.name.value: d for d in parsed.definitions if isinstance(d, graphql.FragmentDefinitionNode)}
    found: dict[str, set[str]] = {}

    def walk(selection_set: graphql.SelectionSetNode | None, path: str) -> None:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, graphql.FragmentSpreadNode):
                walk(fragments[selection.name.value].selection_set, path)
            elif isinstance(selection, graphql.FieldNode):
                found.setdefault(path, set()).add(selection.name.value)
                walk(
                    selection.selection_set,
                    f"{path}.{selection.name.value}" if path else selection.name.value,
                )

    for definition in parsed.definitions:
        if isinstance(definition, graphql.OperationDefinitionNode):
            walk(definition.selection_set, "")
    return found


@pytest.mark.parametrize("document", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_document_asks_for_no_buyer_pii(document: str) -> None:
    selected = _selections(document)
    root = "order" if "order" in selected[""] else "orders.nodes"
    assert selected[f"{root}.shippingAddress"] == {"provinceCode", "countryCodeV2"}
    assert selected[f"{root}.customer"] == {"id", "orders"}
    assert not PII_FIELDS & set().union(*selected.values())


def test_order_name_search() -> None:
    assert order_name_search("1001") == "name:#1001"
    assert order_name_search("#1001") == "name:#1001"


# --- The fixtures are exactly what the documents answer ------------------------------


def test_there_is_a_fixture_for_each_order() -> None:
    names = {json.loads(path.read_text())["name"]: path.stem for path in SHOPIFY_FIXTURES}
    assert set(names) >= {"#1001", "#1002", "#1003", "#1004", "#1005", "#1006"}
    assert names["#1001"] == "450789469"


@pytest.mark.parametrize("path", SHOPIFY_FIXTURES, ids=lambda p: p.stem)
def test_fixture_is_the_answer_to_both_documents(shopify_schema: graphql.GraphQLSchema, path: Path) -> None:
    node = json.loads(path.read_text(encoding="utf-8"))
    assert node["id"] == f"gid://shopify/Order/{path.stem}"
    # Executing the documents over the fixture keeps only the fields they select and checks the
    # schema's types and nullability: a fixture with an extra, missing or mistyped field comes out
    # different (or with errors).
    for document, root, expected in (
        (ORDER_BY_ID_QUERY, {"order": node}, {"order": node}),
        (ORDER_BY_NAME_QUERY, {"orders": {"nodes": [node]}}, {"orders": {"nodes": [node]}}),
    ):
        result = graphql.execute_sync(
            shopify_schema,
            graphql.parse(document),
            root_value=root,
            variable_values={"id": "x", "query": "x"},
        )
        assert result.errors is None
        assert result.data == expected


def test_the_fixture_check_catches_an_extra_field(
    shopify_schema: graphql.GraphQLSchema, shopify_node: Node
) -> None:
    node = shopify_node("450789469")
    node["email"] = "someone@example.com"
    result = graphql.execute_sync(
        shopify_schema,
        graphql.parse(ORDER_BY_ID_QUERY),
        root_value={"order": node},
        variable_values={"id": "x"},
    )
    assert result.data != {"order": node}


# --- Normalisation ------------------------------------------------------------------


def test_ontario_order_delivered_by_carrier(shopify_node: Node, shopify_channel: ShopifyChannel) -> None:
    order = order_from_shopify(shopify_node("450789469"), shopify_channel)

    assert order.channel == "shopify_ca"
    assert order.platform is Platform.shopify
    assert order.fulfillment is Fulfillment.shopify
    assert order.order_ref == "#1001"
    assert order.order_id == "gid://shopify/Order/450789469"
    assert order.placed_at == at("2026-11-10T15:20:00+00:00")
    assert order.shipped_at == at("2026-11-11T14:00:00+00:00")
    # deliveredAt wins over the later estimatedDeliveryAt of the same fulfilment.
    assert order.delivered_at == at("2026-11-14T17:42:00+00:00")
    assert order.delivered_at_source is DeliverySource.carrier
    assert (order.ship_to_country, order.ship_to_region, order.customer_locale) == ("CA", "ON", "en-CA")
    assert (order.currency, order.presentment_currency) == ("CAD", "CAD")
    assert order.total == Money(amount=Decimal("94.92"), currency="CAD")
    assert [(line.sku, line.title, line.quantity, line.unit_price.amount) for line in order.lines] == [
        ("TOQ-MER-GRY", "Merino Wool Toque - Grey", 1, Decimal("39.00")),
        ("MIT-SHP-M", "Sherpa-Lined Mittens - M", 1, Decimal("45.00")),
    ]
    assert order.lines[0].line_id == "gid://shopify/LineItem/1071823172"
    assert order.lines[0].product_type == "Hats"
    assert all(line.presentment_unit_price is None for line in order.lines)
    assert order.earlier_returns_at == []
    assert order.sandbox is False


def test_quebec_order_with_a_final_sale_line(shopify_node: Node, shopify_channel: ShopifyChannel) -> None:
    node = shopify_node("450789470")
    own = next(o for o in node["customer"]["orders"]["nodes"] if o["id"] == node["id"])
    assert own["returns"]["nodes"]  # this order has a return of its own...

    order = order_from_shopify(node, shopify_channel)

    assert (order.ship_to_region, order.customer_locale) == ("QC", None)
    assert {line.sku: "final-sale" in line.tags for line in order.lines} == {
        "TOWEL-LIN-3": True,
        "POUR-CER": False,
    }
    # ...which is not one of the customer's earlier returns.
    assert order.earlier_returns_at == [at("2026-03-12T18:20:00+00:00")]
    assert order.delivered_at == at("2026-10-24T19:10:00+00:00")


def test_quebec_order_in_english_by_a_guest(shopify_node: Node, shopify_channel: ShopifyChannel) -> None:
    order = order_from_shopify(shopify_node("450789471"), shopify_channel)
    assert (order.ship_to_region, order.customer_locale) == ("QC", "en")
    assert order.earlier_returns_at == []


def test_unfulfilled_order_is_not_shipped(shopify_node: Node, shopify_channel: ShopifyChannel) -> None:
    order = order_from_shopify(shopify_node("450789472"), shopify_channel)
    assert (order.shipped_at, order.delivered_at, order.delivered_at_source) == (None, None, None)
    assert not order.shipped


def test_high_value_order_paid_in_usd(shopify_node: Node, shopify_channel: ShopifyChannel) -> None:
    order = order_from_shopify(shopify_node("450789473"), shopify_channel)

    assert (order.currency, order.presentment_currency) == ("CAD", "USD")
    assert order.total == Money(amount=Decimal("449.00"), currency="CAD")  # the shop's money, not the buyer's
    [line] = order.lines
    assert line.unit_price == Money(amount=Decimal("449.00"), currency="CAD")
    assert line.presentment_unit_price == Money(amount=Decimal("321.00"), currency="USD")
    assert order.earlier_returns_at == sorted(order.earlier_returns_at)
    assert len(order.earlier_returns_at) == 4
    since = at("2026-11-26T00:00:00+00:00") - timedelta(days=365)
    assert sum(created >= since for created in order.earlier_returns_at) == 3


def test_cheap_order_without_delivery_time_is_estimated(
    shopify_node: Node, shopify_channel: ShopifyChannel
) -> None:
    order = order_from_shopify(shopify_node("450789474"), shopify_channel)
    assert order.total.amount == Decimal("19.43")
    assert order.lines[0].unit_price.amount == Decimal("18.50")
    assert order.shipped_at == at("2026-11-19T13:00:00+00:00")
    assert order.delivered_at == at("2026-11-24T13:00:00+00:00")
    assert order.delivered_at_source is DeliverySource.estimated

    slower = dataclasses.replace(shopify_channel, transit_days=7)
    assert order_from_shopify(shopify_node("450789474"), slower).delivered_at == at(
        "2026-11-26T13:00:00+00:00"
    )


def test_estimated_delivery_is_a_promise_and_cancelled_fulfilments_do_not_count(
    shopify_node: Node, shopify_channel: ShopifyChannel
) -> None:
    node = shopify_node("450789475")
    assert node["fulfillments"][0]["status"] == "CANCELLED"

    order = order_from_shopify(node, shopify_channel)

    assert order.shipped_at == at("2026-11-22T14:30:00+00:00")
    assert order.delivered_at == at("2026-11-27T23:00:00+00:00")
    assert order.delivered_at_source is DeliverySource.promised


def test_several_fulfilments(shopify_node: Node, shopify_channel: ShopifyChannel) -> None:
    node = shopify_node("450789469")
    first = node["fulfillments"][0]
    node["fulfillments"] = [
        {**first, "createdAt": "2026-11-12T10:00:00Z", "deliveredAt": "2026-11-16T12:00:00Z"},
        first,
        {**first, "createdAt": "2026-11-13T10:00:00Z", "deliveredAt": None},
    ]
    order = order_from_shopify(node, shopify_channel)
    assert order.shipped_at == at("2026-11-11T14:00:00+00:00")  # the first parcel left then
    assert order.delivered_at == at("2026-11-16T12:00:00+00:00")  # the last known delivery


def test_line_without_product(shopify_node: Node, shopify_channel: ShopifyChannel) -> None:
    node = shopify_node("450789469")
    node["lineItems"]["nodes"][0]["product"] = None  # the product was deleted since
    line = order_from_shopify(node, shopify_channel).lines[0]
    assert (line.product_type, line.tags) == (None, [])


def test_sandbox_flag_is_passed_through(shopify_node: Node, shopify_channel: ShopifyChannel) -> None:
    assert order_from_shopify(shopify_node("450789469"), shopify_channel, sandbox=True).sandbox is True


# --- Malformed answers are upstream errors, never KeyError ---------------------------


def _mutation(
    path: tuple[str | int, ...], value: Any = ..., *, drop: bool = False
) -> Callable[[dict[str, Any]], None]:
    def mutate(node: dict[str, Any]) -> None:
        parent: Any = node
        for key in path[:-1]:
            parent = parent[key]
        if drop:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value

    return mutate


LINE = ("lineItems", "nodes", 0)


@pytest.mark.parametrize(
    ("mutate", "mentions"),
    [
        (_mutation(("id",), drop=True), "id is missing"),
        (_mutation(("name",), drop=True), "name"),
        (_mutation(("createdAt",), "10/11/2026"), "createdAt"),
        (_mutation(("currencyCode",), drop=True), "currencyCode"),
        (_mutation(("totalPriceSet",), drop=True), "totalPriceSet"),
        (_mutation(("totalPriceSet", "shopMoney", "amount"), "ninety"), "ninety"),
        (_mutation(("totalPriceSet", "shopMoney", "currencyCode"), "USD"), "USD"),
        (_mutation(("lineItems",), drop=True), "lineItems"),
        (_mutation(("lineItems", "nodes"), {}), "not a list"),
        (_mutation((*LINE, "quantity"), -1), "quantity"),
        (_mutation((*LINE, "title"), drop=True), "title"),
        (_mutation((*LINE, "originalUnitPriceSet", "shopMoney", "amount"), "Infinity"), "Infinity"),
        (_mutation((*LINE, "product", "tags"), "final-sale"), "tags"),
        (_mutation((*LINE, "product", "tags"), [1]), "tags"),
        (_mutation(("fulfillments",), drop=True), "fulfillments"),
        (_mutation(("fulfillments", 0, "deliveredAt"), "delivered"), "deliveredAt"),
        (_mutation(("customer", "orders"), drop=True), "orders"),
        (
            _mutation(("customer", "orders", "nodes", 1, "returns", "nodes", 0), {"createdAt": None}),
            "createdAt",
        ),
        (_mutation(("shippingAddress", "provinceCode"), 7), "provinceCode"),
        (_mutation(("presentmentCurrencyCode",), "us dollars"), "us dollars"),
    ],
)
def test_malformed_node_is_an_upstream_error(
    shopify_node: Node,
    shopify_channel: ShopifyChannel,
    mutate: Callable[[dict[str, Any]], None],
    mentions: str,
) -> None:
    node = shopify_node("450789469")
    node["customer"]["orders"]["nodes"][1]["returns"]["nodes"] = [{"createdAt": "2026-05-01T12:00:00Z"}]
    order_from_shopify(node, shopify_channel)  # well-formed before the mutation
    mutate(node)
    with pytest.raises(UpstreamError) as caught:
        order_from_shopify(node, shopify_channel)
    assert mentions in caught.value.detail
