"""The sandbox connector: every fixture is served, by every kind of reference the contract allows."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.channels import AmazonChannel, ShopifyChannel
from app.connectors import sandbox
from app.connectors.base import OrderSource
from app.connectors.sandbox import SandboxConnector
from app.domain import Platform
from app.errors import OrderNotFound, UnsupportedMarketplace
from tests.connectors.conftest import ALL_AMAZON_FIXTURES, AMAZON_FIXTURES, SHOPIFY_FIXTURES

KETTLE = "113-4567890-1234567"


@pytest.fixture(scope="module")
def amazon_sandbox(amazon_channel: AmazonChannel) -> SandboxConnector:
    return SandboxConnector([amazon_channel])


@pytest.fixture(scope="module")
def shopify_sandbox(shopify_channel: ShopifyChannel) -> SandboxConnector:
    return SandboxConnector([shopify_channel])


def test_it_is_an_order_source(amazon_sandbox: SandboxConnector, amazon_channel: AmazonChannel) -> None:
    source: OrderSource = amazon_sandbox  # mypy checks the protocol; the channel is the one given
    assert source.channel is amazon_channel


def test_order_refs_list_every_fixture(
    amazon_sandbox: SandboxConnector, shopify_sandbox: SandboxConnector
) -> None:
    # The Amazon sandbox is one seller account: it holds every marketplace's fixtures.
    assert amazon_sandbox.order_refs() == sorted(path.stem for path in ALL_AMAZON_FIXTURES)
    assert set(amazon_sandbox.order_refs()) > {path.stem for path in AMAZON_FIXTURES}
    assert shopify_sandbox.order_refs() == sorted(json.loads(p.read_text())["name"] for p in SHOPIFY_FIXTURES)
    assert "#1001" in shopify_sandbox.order_refs()


@pytest.mark.parametrize("order_id", [path.stem for path in AMAZON_FIXTURES])
async def test_amazon_order_by_id(amazon_sandbox: SandboxConnector, order_id: str) -> None:
    order = await amazon_sandbox.resolve_order(order_id)
    assert order.order_id == order_id
    assert order.platform is Platform.amazon
    assert order.channel == "amazon_us"
    assert order.sandbox is True


async def test_amazon_reference_is_trimmed(amazon_sandbox: SandboxConnector) -> None:
    assert (await amazon_sandbox.resolve_order(f"  {KETTLE} ")).order_id == KETTLE


@pytest.mark.parametrize(
    "order_ref",
    ["1001", "#1001", " #1001 ", "450789469", "gid://shopify/Order/450789469"],
)
async def test_shopify_order_by_each_kind_of_reference(
    shopify_sandbox: SandboxConnector, order_ref: str
) -> None:
    order = await shopify_sandbox.resolve_order(order_ref)
    assert (order.order_ref, order.order_id) == ("#1001", "gid://shopify/Order/450789469")
    assert order.platform is Platform.shopify
    assert order.sandbox is True


@pytest.mark.parametrize(
    ("order_ref", "name"),
    [
        ("#1005", "#1005"),
        ("1006", "#1006"),
        ("450789474", "#1006"),
        ("gid://shopify/Order/450789472", "#1004"),
    ],
)
async def test_shopify_references_find_their_own_order(
    shopify_sandbox: SandboxConnector, order_ref: str, name: str
) -> None:
    assert (await shopify_sandbox.resolve_order(order_ref)).order_ref == name


@pytest.mark.parametrize(
    ("connector", "order_ref"),
    [
        ("amazon_sandbox", "113-0000000-0000000"),
        ("amazon_sandbox", "#1001"),
        ("shopify_sandbox", "#9999"),
        ("shopify_sandbox", "9999"),
        ("shopify_sandbox", "#450789469"),  # an order id is not a name
        ("shopify_sandbox", "gid://shopify/Order/1001"),  # nor is a name an id
        ("shopify_sandbox", KETTLE),
    ],
)
async def test_unknown_reference_is_order_not_found(
    request: pytest.FixtureRequest, connector: str, order_ref: str
) -> None:
    source: SandboxConnector = request.getfixturevalue(connector)
    with pytest.raises(OrderNotFound) as caught:
        await source.resolve_order(order_ref)
    detail = caught.value.detail
    assert order_ref in detail
    assert source.channel.key in detail
    assert "sandbox" in detail
    assert source.order_refs()[0] in detail  # the hint lists what the sandbox has
    assert caught.value.status == 404


# --- A bare number is an order name first, then an order id --------------------------


def _write_order(folder: Path, node: dict[str, Any], numeric_id: str, name: str) -> None:
    node = {**node, "id": f"gid://shopify/Order/{numeric_id}", "name": name}
    (folder / f"{numeric_id}.json").write_text(json.dumps(node))


async def test_bare_number_prefers_the_order_name(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shopify_channel: ShopifyChannel,
    shopify_node: Callable[[str], dict[str, Any]],
) -> None:
    folder = tmp_path / shopify_channel.key
    folder.mkdir()
    template = shopify_node("450789469")
    # Order 5001 is named #7001, and order 7001 is named #5001.
    _write_order(folder, template, "5001", "#7001")
    _write_order(folder, template, "7001", "#5001")
    _write_order(folder, template, "8001", "#1")
    monkeypatch.setattr(sandbox, "_FIXTURES", tmp_path)
    source = SandboxConnector([shopify_channel])

    assert (await source.resolve_order("5001")).order_ref == "#5001"
    assert (await source.resolve_order("7001")).order_ref == "#7001"
    assert (await source.resolve_order("8001")).order_ref == "#1"  # no such name: the order id


async def test_channel_without_fixtures_is_an_empty_sandbox(shopify_channel: ShopifyChannel) -> None:
    source = SandboxConnector([dataclasses.replace(shopify_channel, key="shopify_fr")])
    assert source.order_refs() == []
    with pytest.raises(OrderNotFound, match="shopify_fr"):
        await source.resolve_order("#1001")


async def test_the_amazon_sandbox_is_one_seller_account_across_marketplaces(
    amazon_channel: AmazonChannel,
) -> None:
    amazon_ca = dataclasses.replace(amazon_channel, key="amazon_ca", marketplace_id="A2EUQ1WTGCTBG2")
    us_only = SandboxConnector([amazon_channel])
    both = SandboxConnector([amazon_channel, amazon_ca])

    with pytest.raises(UnsupportedMarketplace, match=r"A2EUQ1WTGCTBG2 \(Amazon\.ca\)"):
        await us_only.resolve_order("701-4455667-1234501")
    assert (await both.resolve_order("701-4455667-1234501")).channel == "amazon_ca"
    assert (await both.resolve_order(KETTLE)).channel == "amazon_us"
    with pytest.raises(UnsupportedMarketplace, match=r"A1AM78C64UM0Y8 \(Amazon\.com\.mx\)"):
        await both.resolve_order("702-1234567-5678905")
