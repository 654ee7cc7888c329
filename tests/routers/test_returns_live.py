"""`POST /v1/returns/route` with live Amazon credentials: the order comes from the SP-API (a local
stand-in on 127.0.0.1), and the decision says so."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.services.api_keys import Scope
from app.settings import Settings
from tests.conftest import MakeKey, serving
from tests.connectors.amazon_standin import AmazonStandIn
from tests.connectors.conftest import FIXTURES

KETTLE = "113-4567890-1234567"


@pytest.fixture
def standin() -> Iterator[AmazonStandIn]:
    kettle = json.loads((FIXTURES / "amazon_us" / f"{KETTLE}.json").read_text(encoding="utf-8"))
    with AmazonStandIn({KETTLE: kettle}) as server:
        yield server


def live_settings(settings: Settings, standin: AmazonStandIn, **overrides: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=settings.database_url,
        log_format="json",
        log_level="WARNING",
        channel_amazon_us_lwa_client_id="amzn1.application-oa2-client.test",
        channel_amazon_us_lwa_client_secret="client-secret",
        channel_amazon_us_refresh_token="Atzr|refresh",
        channel_amazon_us_endpoint=standin.url,
        channel_amazon_us_lwa_token_url=standin.token_url,
        **overrides,
    )


@pytest.fixture
async def client(settings: Settings, standin: AmazonStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(live_settings(settings, standin)) as client:
        yield client


async def test_an_amazon_order_is_resolved_live_and_the_decision_is_not_sandbox(
    client: httpx.AsyncClient, make_key: MakeKey, standin: AmazonStandIn
) -> None:
    headers = await make_key(Scope.route)
    body = {"order_ref": KETTLE, "reason": "damaged", "as_of": "2026-12-03T15:00:00Z"}

    response = await client.post("/v1/returns/route", json=body, headers=headers)

    assert response.status_code == 201, response.text
    decision = response.json()
    assert decision["sandbox"] is False
    assert decision["channel"] == "amazon_us"
    assert decision["classification"] == "compliance_return"
    assert decision["order"]["total"] == {"amount": "59.99", "currency": "USD"}
    assert decision["policy"]["return_window_ends"] == "2027-01-31"
    assert [order_id for _, order_id in standin.calls] == [KETTLE]
    assert standin.queries[0]["includedData"] == ["FULFILLMENT,PACKAGES,PROCEEDS"]
    # A second request for the same order within the cache's age makes no second call.
    again = await client.post("/v1/returns/route", json=body, headers=headers)
    assert again.status_code == 201
    assert again.json()["decision_id"] != decision["decision_id"]
    assert (len(standin.calls), standin.token_calls) == (1, 1)


async def test_an_order_amazon_does_not_have_is_order_not_found(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    response = await client.post(
        "/v1/returns/route", json={"order_ref": "113-0000000-0000000"}, headers=await make_key(Scope.route)
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "order_not_found"


async def test_past_the_wait_bound_a_request_is_a_503_with_retry_after(
    settings: Settings, standin: AmazonStandIn, make_key: MakeKey
) -> None:
    tight = live_settings(
        settings,
        standin,
        channel_amazon_us_get_order_rate=0.1,
        channel_amazon_us_get_order_burst=1,
        upstream_max_wait_seconds=1,
    )
    headers = await make_key(Scope.route)
    async with serving(tight) as client:
        first = await client.post("/v1/returns/route", json={"order_ref": KETTLE}, headers=headers)
        second = await client.post(
            "/v1/returns/route", json={"order_ref": "113-0000000-0000001"}, headers=headers
        )
    assert first.status_code == 201
    assert second.status_code == 503
    assert second.json()["code"] == "upstream_rate_limited"
    assert int(second.headers["Retry-After"]) >= 1
    assert len(standin.calls) == 1  # the refused request never reached Amazon
