"""Which connector serves a channel: the live one with credentials, the sandbox without."""

from __future__ import annotations

import dataclasses

import httpx
from pydantic import SecretStr

from app.channels import AmazonChannel, ShopifyChannel
from app.connectors.amazon import AmazonConnector
from app.connectors.registry import Connectors
from app.connectors.sandbox import SandboxConnector
from app.connectors.shopify import ShopifyConnector


def live_amazon(channel: AmazonChannel) -> AmazonChannel:
    return dataclasses.replace(
        channel,
        lwa_client_id="amzn1.application-oa2-client.test",
        lwa_client_secret=SecretStr("secret"),
        refresh_token=SecretStr("Atzr|refresh"),
    )


async def test_an_amazon_channel_with_credentials_is_served_live(
    amazon_channel: AmazonChannel, shopify_channel: ShopifyChannel
) -> None:
    async with httpx.AsyncClient() as http:
        connectors = Connectors.for_channels(
            {"amazon_us": live_amazon(amazon_channel), "shopify_ca": shopify_channel}, http=http
        )
    assert isinstance(connectors.source("amazon_us"), AmazonConnector)
    assert isinstance(connectors.source("shopify_ca"), SandboxConnector)


async def test_without_credentials_amazon_stays_on_the_sandbox(amazon_channel: AmazonChannel) -> None:
    async with httpx.AsyncClient() as http:
        connectors = Connectors.for_channels({"amazon_us": amazon_channel}, http=http)
    assert isinstance(connectors.source("amazon_us"), SandboxConnector)


async def test_a_shopify_channel_with_credentials_is_served_live(shopify_channel: ShopifyChannel) -> None:
    live = dataclasses.replace(shopify_channel, shop_domain="shop.example", access_token=SecretStr("shpat_x"))
    async with httpx.AsyncClient() as http:
        connectors = Connectors.for_channels({"shopify_ca": live}, http=http)
    assert isinstance(connectors.source("shopify_ca"), ShopifyConnector)
    assert connectors.shopify("shopify_ca") is connectors.source("shopify_ca")


async def test_amazon_channels_with_the_same_credentials_share_one_connector(
    amazon_channel: AmazonChannel,
) -> None:
    us = live_amazon(amazon_channel)
    ca = dataclasses.replace(us, key="amazon_ca", marketplace_id="A2EUQ1WTGCTBG2")
    other_seller = dataclasses.replace(us, key="amazon_other", refresh_token=SecretStr("Atzr|other"))
    async with httpx.AsyncClient() as http:
        connectors = Connectors.for_channels(
            {"amazon_us": us, "amazon_ca": ca, "amazon_other": other_seller}, http=http
        )

    shared = connectors.source("amazon_us")
    assert isinstance(shared, AmazonConnector)
    assert shared is connectors.source("amazon_ca")
    assert shared.channels == (us, ca)
    assert connectors.source("amazon_other") is not shared
    # Each seller account is asked once for an order id, not once per channel.
    assert connectors.candidates("113-4567890-1234567", None) == [shared, connectors.source("amazon_other")]
    assert connectors.candidates("113-4567890-1234567", "amazon_ca") == [shared]


async def test_amazon_channels_without_credentials_share_the_sandbox_account(
    amazon_channel: AmazonChannel,
) -> None:
    ca = dataclasses.replace(amazon_channel, key="amazon_ca", marketplace_id="A2EUQ1WTGCTBG2")
    async with httpx.AsyncClient() as http:
        connectors = Connectors.for_channels({"amazon_us": amazon_channel, "amazon_ca": ca}, http=http)

    assert isinstance(connectors.source("amazon_ca"), SandboxConnector)
    assert connectors.source("amazon_ca") is connectors.source("amazon_us")
