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
