"""Shared fixtures of the connector tests: the channels, the vendor models and the sandbox fixtures."""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import graphql
import pytest
from redis.asyncio import Redis

import app.connectors
from app.channels import AmazonChannel, ShopifyChannel
from tests.fakes.shopify_schema import admin_schema
from tests.vendor import AMAZON_ORDERS_MODEL

FIXTURES = Path(app.connectors.__file__).parent / "fixtures"
AMAZON_FIXTURES = sorted((FIXTURES / "amazon_us").glob("*.json"))
# The sandbox seller account's orders: every marketplace's (Amazon.com, .ca, .com.mx, .com.br).
ALL_AMAZON_FIXTURES = sorted(FIXTURES.glob("amazon_*/*.json"))
SHOPIFY_FIXTURES = sorted((FIXTURES / "shopify_ca").glob("*.json"))
# What Amazon and Shopify publish as sample answers and payloads (see SOURCES.md there).
PUBLISHED = Path(__file__).resolve().parents[1] / "fixtures" / "published"


@pytest.fixture(scope="session")
def amazon_channel() -> AmazonChannel:
    return AmazonChannel(
        key="amazon_us",
        timezone="America/Los_Angeles",
        currency="USD",
        transit_days=5,
        marketplace_id="ATVPDKIKX0DER",
        endpoint="https://sellingpartnerapi-na.amazon.com",
        lwa_token_url="https://api.amazon.com/auth/o2/token",
    )


@pytest.fixture(scope="session")
def shopify_channel() -> ShopifyChannel:
    return ShopifyChannel(
        key="shopify_ca",
        timezone="America/Toronto",
        currency="CAD",
        transit_days=5,
        shop_domain=None,
        api_version="2026-10",
    )


@pytest.fixture(scope="session")
def amazon_orders_model() -> dict[str, Any]:
    """The official Orders API 2026-01-01 Swagger model."""
    model: dict[str, Any] = json.loads(AMAZON_ORDERS_MODEL.read_text())
    return model


@pytest.fixture(scope="session")
def shopify_schema() -> graphql.GraphQLSchema:
    """The Admin API 2026-01 schema; building it takes seconds, so once per session."""
    return admin_schema()


def _loader(folder: str) -> Callable[[str], dict[str, Any]]:
    cache: dict[str, dict[str, Any]] = {}

    def load(name: str) -> dict[str, Any]:
        if name not in cache:
            cache[name] = json.loads((FIXTURES / folder / f"{name}.json").read_text(encoding="utf-8"))
        return copy.deepcopy(cache[name])  # each test may mutate its own copy

    return load


@pytest.fixture(scope="session")
def amazon_payload() -> Callable[[str], dict[str, Any]]:
    """A fresh copy of the `GetOrderResponse` fixture of an order id."""
    return _loader("amazon_us")


@pytest.fixture(scope="session")
def shopify_node() -> Callable[[str], dict[str, Any]]:
    """A fresh copy of the Shopify `order` node fixture of a numeric order id."""
    return _loader("shopify_ca")


TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL)
    async with client:
        yield client


@pytest.fixture
async def redis_prefix(redis: Redis) -> AsyncIterator[str]:
    """A key prefix of this test alone; its keys are removed afterwards (never a FLUSHDB)."""
    prefix = f"test-{uuid.uuid4().hex}:"
    yield prefix
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
