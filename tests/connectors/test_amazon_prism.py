"""The connector against Amazon's own description of the API: a Stoplight Prism mock served from the
official Orders 2026-01-01 model on 127.0.0.1.

Prism checks each request against the model (a wrong path, parameter or `includedData` value is
refused with a 4xx) and answers with the model's own examples and schemas, so this checks the
client against Amazon's description rather than against our fixtures. Prism comes from npm
(`npm ci`, pinned in package-lock.json).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import SecretStr

from app.channels import AmazonChannel
from app.connectors.amazon import AmazonConnector
from app.connectors.lookups import LocalCache
from app.connectors.ratelimit import LocalBuckets
from app.domain import Fulfillment
from app.errors import (
    OrderNotFound,
    ProblemError,
    UnsupportedMarketplace,
    UpstreamAuthFailed,
    UpstreamBadResponse,
)
from tests.polling import poll_until_sync
from tests.vendor import AMAZON_ORDERS_MODEL

ROOT = Path(__file__).resolve().parents[2]
PRISM = ROOT / "node_modules" / ".bin" / "prism"
TOKEN_URL = "https://lwa.test/auth/o2/token"
ORDER_ID = "113-4567890-1234567"
UK = "A1F83G8C2ARO7P"  # Amazon.co.uk, the marketplace of the model's example

pytestmark = pytest.mark.skipif(not PRISM.exists(), reason="Prism is not installed: run `npm ci`")


# Prism names the port it was given by the system (the command asks for port 0).
LISTENING = re.compile(r"Prism is listening on (http://127\.0\.0\.1:\d+)")


@pytest.fixture(scope="module")
def prism_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("prism") / "prism.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(PRISM), "mock", str(AMAZON_ORDERS_MODEL), "--host", "127.0.0.1", "--port", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def listening() -> str | None:
        if process.poll() is not None:
            pytest.fail(f"Prism exited with {process.returncode}:\n{log_path.read_text()}")
        found = LISTENING.search(log_path.read_text(encoding="utf-8", errors="replace"))
        return found.group(1) if found else None

    try:
        yield poll_until_sync("Prism listening", listening, within=60, every=0.1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def channel(amazon_channel: AmazonChannel, prism_url: str) -> AmazonChannel:
    return dataclasses.replace(
        amazon_channel,
        endpoint=prism_url,
        lwa_token_url=TOKEN_URL,
        lwa_client_id="amzn1.application-oa2-client.test",
        lwa_client_secret=SecretStr("client-secret"),
        refresh_token=SecretStr("Atzr|refresh"),
    )


@pytest.fixture
def lwa() -> Iterator[respx.MockRouter]:
    """Login with Amazon is not in the Orders model: it is mocked; Prism's calls go through."""
    with respx.mock(assert_all_called=False) as mock:
        mock.post(TOKEN_URL).respond(200, json={"access_token": "Atza|prism", "expires_in": 3600})
        mock.route(host="127.0.0.1").pass_through()
        yield mock


def connector_with(channels: list[AmazonChannel], http: httpx.AsyncClient) -> AmazonConnector:
    return AmazonConnector.build(
        channels, http, buckets=LocalBuckets(), cache=LocalCache(), max_wait=10.0, order_max_age=0.0
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_get_order_passes_the_models_validation_and_its_example_normalises(
    channel: AmazonChannel, http: httpx.AsyncClient, lwa: respx.MockRouter
) -> None:
    # Prism answers getOrder's own example (an Amazon.co.uk order), whatever id is asked for: a seller
    # account with a channel on Amazon.co.uk takes it as that channel's order.
    uk = dataclasses.replace(channel, key="amazon_uk", marketplace_id=UK)
    connector = connector_with([channel, uk], http)
    order = await connector.resolve_order(ORDER_ID)
    assert (order.order_id, order.channel) == ("202-1234567-8901234", "amazon_uk")
    assert order.sandbox is False
    assert order.fulfillment is Fulfillment.merchant
    assert order.currency == "GBP"
    assert str(order.total.amount) == "103.97"
    assert [(line.sku, line.quantity, str(line.unit_price.amount)) for line in order.lines] == [
        ("ECHO-DOT-4-UK-CHARCOAL-3PACK", 3, "29.99")
    ]
    assert order.shipped_at is not None
    assert order.delivered_at is not None


async def test_the_example_is_refused_by_an_account_with_no_channel_on_its_marketplace(
    channel: AmazonChannel, http: httpx.AsyncClient, lwa: respx.MockRouter
) -> None:
    with pytest.raises(UnsupportedMarketplace) as raised:
        await connector_with([channel], http).resolve_order(ORDER_ID)
    assert raised.value.status == 422
    assert raised.value.extra == {"marketplace_id": UK}
    assert f"marketplace {UK}" in raised.value.detail


async def test_a_request_the_model_does_not_allow_is_refused_by_the_mock(
    prism_url: str, http: httpx.AsyncClient
) -> None:
    # The check above means something only if Prism does refuse what the model does not allow.
    response = await http.get(
        f"{prism_url}/orders/2026-01-01/orders/{ORDER_ID}", params={"includedData": "EVERYTHING"}
    )
    assert response.status_code == 400
    assert "includeddata" in response.headers["sl-violations"].lower()


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, OrderNotFound), (400, UpstreamBadResponse), (403, UpstreamAuthFailed)],
)
async def test_the_models_error_answers_map_to_the_services_errors(
    channel: AmazonChannel, lwa: respx.MockRouter, status: int, error: type[ProblemError]
) -> None:
    # `Prefer: code=N` makes Prism answer the model's response N (an `ErrorList` built from its schema).
    async with httpx.AsyncClient(headers={"Prefer": f"code={status}"}) as http:
        connector = connector_with([channel], http)
        with pytest.raises(error):
            await connector.resolve_order(ORDER_ID)
