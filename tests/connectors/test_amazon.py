"""The live Amazon connector against respx at the transport: tokens, getOrder, errors, retries,
the seller's bucket and shared lookups."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
import respx
from pydantic import SecretStr

from app.channels import AmazonChannel
from app.connectors.amazon import AmazonConnector
from app.connectors.amazon_auth import REFRESH_AHEAD, AccessTokens
from app.connectors.amazon_orders import order_from_amazon
from app.connectors.lookups import LocalCache, Lookups
from app.connectors.ratelimit import Limit, LocalBuckets, RateLimiter
from app.domain import Order
from app.errors import (
    OrderNotFound,
    ProblemError,
    RateLimitWaitTooLong,
    UnsupportedMarketplace,
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
    ValidationProblem,
)
from tests.connectors.conftest import PUBLISHED

Payload = Callable[[str], dict[str, Any]]
KETTLE = "113-4567890-1234567"
ENDPOINT = "https://sp-api.test"
TOKEN_URL = "https://lwa.test/auth/o2/token"
GET_ORDER_LIMIT = Limit(rate=0.5, burst=30)  # Amazon's published usage plan
GET_ORDER = rf"^{ENDPOINT}/orders/2026-01-01/orders/(?P<order_id>[^/?]+)"


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps(list[float]):
    """Records each wait instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def channel(amazon_channel: AmazonChannel) -> AmazonChannel:
    return dataclasses.replace(
        amazon_channel,
        endpoint=ENDPOINT,
        lwa_token_url=TOKEN_URL,
        lwa_client_id="amzn1.application-oa2-client.test",
        lwa_client_secret=SecretStr("client-secret"),
        refresh_token=SecretStr("Atzr|refresh"),
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@dataclasses.dataclass
class Rig:
    connector: AmazonConnector
    sleeps: Sleeps
    token_clock: Clock
    cache_clock: Clock


@pytest.fixture
def rig_for(channel: AmazonChannel, http: httpx.AsyncClient) -> Callable[..., Rig]:
    def build(
        limit: Limit = GET_ORDER_LIMIT,
        max_wait: float = 10.0,
        max_age: float = 30.0,
        channels: list[AmazonChannel] | None = None,
    ) -> Rig:
        sleeps, token_clock, cache_clock, bucket_clock = Sleeps(), Clock(), Clock(), Clock()
        assert channel.lwa_client_id
        assert channel.lwa_client_secret
        assert channel.refresh_token
        tokens = AccessTokens(
            http,
            token_url=TOKEN_URL,
            client_id=channel.lwa_client_id,
            client_secret=channel.lwa_client_secret,
            refresh_token=channel.refresh_token,
            label="amazon_us.lwa_token",
            clock=token_clock,
        )
        # The bucket's clock stands still: what each call waited is its place in the schedule.
        limiter = RateLimiter(
            LocalBuckets(bucket_clock),
            "seller:getOrder",
            limit,
            max_wait=max_wait,
            upstream="test",
            sleep=sleeps,
        )
        orders = Lookups[Order](
            LocalCache(cache_clock),
            max_age=max_age,
            encode=lambda order: order.model_dump_json().encode(),
            decode=Order.model_validate_json,
        )
        connector = AmazonConnector(
            channels or [channel], http, tokens=tokens, limiter=limiter, orders=orders, sleep=sleeps
        )
        return Rig(connector, sleeps, token_clock, cache_clock)

    return build


@pytest.fixture
def rig(rig_for: Callable[..., Rig]) -> Rig:
    return rig_for()


def token_route(mock: respx.MockRouter, delay: float = 0.0) -> respx.Route:
    issued = 0

    async def issue(request: httpx.Request) -> httpx.Response:
        nonlocal issued
        issued += 1
        await asyncio.sleep(delay)
        return httpx.Response(200, json={"access_token": f"Atza|{issued}", "expires_in": 3600})

    return mock.post(TOKEN_URL).mock(side_effect=issue)


def orders_route(mock: respx.MockRouter, amazon_payload: Payload, delay: float = 0.0) -> respx.Route:
    """Answers any order id with the kettle order under that id."""

    async def answer(request: httpx.Request, order_id: str) -> httpx.Response:
        await asyncio.sleep(delay)
        body = amazon_payload(KETTLE)
        body["order"]["orderId"] = order_id
        return httpx.Response(200, json=body)

    return mock.get(url__regex=GET_ORDER).mock(side_effect=answer)


def error_list(code: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": f"{code} (test)"}]}


def order_ids(n: int) -> list[str]:
    return [f"114-{i:07d}-0000001" for i in range(n)]


# --- getOrder and its answer --------------------------------------------------------


async def test_get_order_asks_for_what_the_decision_needs_and_answers_a_live_order(
    rig: Rig, mock: respx.MockRouter, amazon_payload: Payload, channel: AmazonChannel
) -> None:
    tokens = token_route(mock)
    orders = mock.get(f"{ENDPOINT}/orders/2026-01-01/orders/{KETTLE}").respond(
        200, json=amazon_payload(KETTLE)
    )

    order = await rig.connector.resolve_order(f" {KETTLE} ")

    assert order == order_from_amazon(amazon_payload(KETTLE), channel, sandbox=False)
    assert order.sandbox is False
    request = orders.calls.last.request
    assert request.url.params.get_list("includedData") == ["FULFILLMENT,PACKAGES,PROCEEDS"]
    assert request.headers["x-amz-access-token"] == "Atza|1"
    form = dict(httpx.QueryParams(tokens.calls.last.request.content.decode()))
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": "Atzr|refresh",
        "client_id": "amzn1.application-oa2-client.test",
        "client_secret": "client-secret",
    }


async def test_the_published_get_order_example_is_answered_as_an_order_of_its_marketplace(
    rig_for: Callable[..., Rig], mock: respx.MockRouter, channel: AmazonChannel
) -> None:
    example = json.loads((PUBLISHED / "amazon" / "getOrder.example.json").read_text(encoding="utf-8"))
    order_id = example["order"]["orderId"]  # an Amazon.co.uk order
    uk = dataclasses.replace(channel, key="amazon_uk", marketplace_id="A1F83G8C2ARO7P")
    token_route(mock)
    mock.get(f"{ENDPOINT}/orders/2026-01-01/orders/{order_id}").respond(200, json=example)

    order = await rig_for(channels=[channel, uk]).connector.resolve_order(order_id)

    assert order == order_from_amazon(example, uk, sandbox=False)
    assert (order.order_ref, order.channel, order.currency) == (order_id, "amazon_uk", "GBP")
    assert str(order.total.amount) == "103.97"
    with pytest.raises(UnsupportedMarketplace, match="A1F83G8C2ARO7P, which no channel"):
        await rig_for(channels=[channel]).connector.resolve_order(order_id)


async def test_the_published_sandbox_refusal_is_a_validation_problem(
    rig: Rig, mock: respx.MockRouter
) -> None:
    case = json.loads(
        (PUBLISHED / "amazon" / "getOrder.sandbox.400.TEST_CASE_400.json").read_text(encoding="utf-8")
    )
    token_route(mock)
    mock.get(url__regex=GET_ORDER).respond(400, json=case["response"])

    with pytest.raises(ValidationProblem) as raised:
        await rig.connector.resolve_order("114-0000000-0000400")
    assert raised.value.status == 422


async def test_a_malformed_order_id_is_refused_without_a_call(rig: Rig, mock: respx.MockRouter) -> None:
    with pytest.raises(ValidationProblem) as raised:
        await rig.connector.resolve_order("113-45678")
    assert raised.value.status == 422
    assert mock.calls.call_count == 0


# --- Login with Amazon ----------------------------------------------------------------


async def test_the_access_token_is_kept_until_shortly_before_it_expires(
    rig: Rig, mock: respx.MockRouter, amazon_payload: Payload
) -> None:
    tokens, orders = token_route(mock), orders_route(mock, amazon_payload)
    first, second, third = order_ids(3)
    await rig.connector.resolve_order(first)
    rig.token_clock.now += 3600 - REFRESH_AHEAD - 1
    await rig.connector.resolve_order(second)
    assert tokens.call_count == 1
    rig.token_clock.now += 2  # now inside the last minute: refreshed before use
    await rig.connector.resolve_order(third)
    assert tokens.call_count == 2
    assert orders.calls.last.request.headers["x-amz-access-token"] == "Atza|2"


async def test_many_requests_at_expiry_share_one_token_refresh(
    rig: Rig, mock: respx.MockRouter, amazon_payload: Payload
) -> None:
    tokens, orders = token_route(mock, delay=0.05), orders_route(mock, amazon_payload)
    ids = order_ids(21)
    await rig.connector.resolve_order(ids[0])
    rig.token_clock.now += 3600  # expired

    await asyncio.gather(*(rig.connector.resolve_order(order_id) for order_id in ids[1:]))

    assert tokens.call_count == 2
    assert orders.call_count == 21
    assert {call.request.headers["x-amz-access-token"] for call in orders.calls[1:]} == {"Atza|2"}


@pytest.mark.parametrize("status", [400, 401])
async def test_refused_credentials_are_a_502_without_retrying(
    rig: Rig, mock: respx.MockRouter, status: int
) -> None:
    tokens = mock.post(TOKEN_URL).respond(
        status, json={"error": "invalid_grant", "error_description": "The request has an invalid grant"}
    )
    orders = mock.get(url__regex=GET_ORDER)
    with pytest.raises(UpstreamAuthFailed) as raised:
        await rig.connector.resolve_order(KETTLE)
    assert (raised.value.status, raised.value.code) == (502, "upstream_auth_failed")
    assert "invalid_grant" in raised.value.detail
    assert (tokens.call_count, orders.call_count) == (1, 0)


async def test_a_refused_access_token_is_replaced_on_the_next_request(
    rig: Rig, mock: respx.MockRouter, amazon_payload: Payload
) -> None:
    tokens = token_route(mock)
    orders = mock.get(url__regex=GET_ORDER).mock(
        side_effect=[
            httpx.Response(403, json=error_list("Unauthorized")),
            httpx.Response(200, json=amazon_payload(KETTLE)),
        ]
    )
    with pytest.raises(UpstreamAuthFailed):
        await rig.connector.resolve_order(KETTLE)
    assert orders.call_count == 1  # not retried
    await rig.connector.resolve_order(KETTLE)
    assert tokens.call_count == 2
    assert orders.calls.last.request.headers["x-amz-access-token"] == "Atza|2"


# --- Errors and retries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "error", "status", "calls"),
    [
        (httpx.Response(404, json=error_list("NotFound")), OrderNotFound, 404, 1),
        (httpx.Response(400, json=error_list("InvalidInput")), ValidationProblem, 422, 1),
        (httpx.Response(400, json=error_list("SomethingElse")), UpstreamBadResponse, 502, 1),
        (httpx.Response(415, json=error_list("UnsupportedMediaType")), UpstreamBadResponse, 502, 1),
        (httpx.Response(200, text="<html>maintenance</html>"), UpstreamBadResponse, 502, 1),
        (httpx.Response(200, json={"order": {"orderId": KETTLE}}), UpstreamError, 502, 1),
        (httpx.Response(429, json=error_list("QuotaExceeded")), UpstreamRateLimited, 503, 4),
        (httpx.Response(500, json=error_list("InternalFailure")), UpstreamUnavailable, 503, 4),
        (httpx.Response(503, json=error_list("ServiceUnavailable")), UpstreamUnavailable, 503, 4),
        (httpx.Response(504, text=""), UpstreamTimeout, 504, 4),
    ],
)
async def test_each_answer_of_amazon_has_its_error(
    rig: Rig,
    mock: respx.MockRouter,
    response: httpx.Response,
    error: type[ProblemError],
    status: int,
    calls: int,
) -> None:
    token_route(mock)
    orders = mock.get(url__regex=GET_ORDER).mock(return_value=response)
    with pytest.raises(error) as raised:
        await rig.connector.resolve_order(KETTLE)
    assert type(raised.value) is error
    assert raised.value.status == status
    assert orders.call_count == calls  # only throttling, 5xx and timeouts are retried, and boundedly


async def test_timeouts_are_retried_then_a_504(rig: Rig, mock: respx.MockRouter) -> None:
    token_route(mock)
    orders = mock.get(url__regex=GET_ORDER).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(UpstreamTimeout) as raised:
        await rig.connector.resolve_order(KETTLE)
    assert (raised.value.status, orders.call_count) == (504, 4)
    assert len(rig.sleeps) == 3
    assert all(0 < wait <= 8 for wait in rig.sleeps)


async def test_throttling_honours_retry_after_and_empties_the_bucket(
    rig: Rig, mock: respx.MockRouter, amazon_payload: Payload
) -> None:
    token_route(mock)
    orders = mock.get(url__regex=GET_ORDER).mock(
        side_effect=[
            httpx.Response(429, json=error_list("QuotaExceeded"), headers={"Retry-After": "3"}),
            httpx.Response(200, json=amazon_payload(KETTLE)),
        ]
    )
    order = await rig.connector.resolve_order(KETTLE)
    assert order.order_id == KETTLE
    assert orders.call_count == 2
    # 3 s as Amazon said, then 2 s for a token of our bucket (0.5/s), which the 429 emptied.
    assert rig.sleeps == [3.0, 2.0]


async def test_a_retry_after_beyond_the_bound_goes_up_as_a_503_with_retry_after(
    rig: Rig, mock: respx.MockRouter
) -> None:
    token_route(mock)
    orders = mock.get(url__regex=GET_ORDER).respond(
        429, json=error_list("QuotaExceeded"), headers={"Retry-After": "120"}
    )
    with pytest.raises(UpstreamRateLimited) as raised:
        await rig.connector.resolve_order(KETTLE)
    assert orders.call_count == 1
    assert raised.value.headers["Retry-After"] == "120"


# --- The seller's bucket ------------------------------------------------------------------


async def test_a_burst_of_40_lookups_keeps_to_amazons_rate_and_burst(
    rig_for: Callable[..., Rig], mock: respx.MockRouter, amazon_payload: Payload
) -> None:
    rig = rig_for(limit=Limit(rate=0.5, burst=30), max_wait=60.0)
    token_route(mock)
    orders = orders_route(mock, amazon_payload)

    await asyncio.gather(*(rig.connector.resolve_order(order_id) for order_id in order_ids(40)))

    assert orders.call_count == 40
    # Each call went out after the wait it was given: 30 at once (the burst), then one every 2 s.
    starts = sorted([0.0] * (40 - len(rig.sleeps)) + list(rig.sleeps))
    assert starts == [0.0] * 30 + [2.0 * n for n in range(1, 11)]
    for second in range(0, 21):
        assert sum(1 for start in starts if start <= second) <= 30 + 0.5 * second


async def test_a_request_that_would_wait_too_long_is_a_503_at_once(
    rig_for: Callable[..., Rig], mock: respx.MockRouter, amazon_payload: Payload
) -> None:
    rig = rig_for(limit=Limit(rate=0.5, burst=30), max_wait=10.0)
    token_route(mock)
    orders = orders_route(mock, amazon_payload)

    results = await asyncio.gather(
        *(rig.connector.resolve_order(order_id) for order_id in order_ids(40)), return_exceptions=True
    )

    refused = [r for r in results if isinstance(r, Exception)]
    assert orders.call_count == 35  # the burst, and the 5 whose turn comes within 10 s
    assert len(refused) == 5
    assert all(type(r) is RateLimitWaitTooLong for r in refused)
    first = refused[0]
    assert isinstance(first, RateLimitWaitTooLong)
    assert (first.status, first.code) == (503, "upstream_rate_limited")
    assert int(first.headers["Retry-After"]) >= 1
    assert max(rig.sleeps) <= 10.0


# --- Shared lookups ---------------------------------------------------------------------


async def test_50_concurrent_lookups_of_one_order_make_one_call(
    rig: Rig, mock: respx.MockRouter, amazon_payload: Payload
) -> None:
    token_route(mock)
    orders = orders_route(mock, amazon_payload, delay=0.05)

    answers = await asyncio.gather(*(rig.connector.resolve_order(KETTLE) for _ in range(50)))

    assert orders.call_count == 1
    assert all(answer == answers[0] for answer in answers)


async def test_a_repeat_is_answered_from_the_cache_until_it_is_too_old(
    rig_for: Callable[..., Rig], mock: respx.MockRouter, amazon_payload: Payload
) -> None:
    rig = rig_for(max_age=30.0)
    token_route(mock)
    orders = orders_route(mock, amazon_payload)
    first = await rig.connector.resolve_order(KETTLE)
    rig.cache_clock.now += 29
    assert await rig.connector.resolve_order(KETTLE) == first
    assert orders.call_count == 1
    rig.cache_clock.now += 2
    await rig.connector.resolve_order(KETTLE)
    assert orders.call_count == 2


async def test_a_failed_lookup_is_shared_but_not_kept(rig: Rig, mock: respx.MockRouter) -> None:
    token_route(mock)
    orders = mock.get(url__regex=GET_ORDER).respond(404, json=error_list("NotFound"))
    results = await asyncio.gather(
        *(rig.connector.resolve_order(KETTLE) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(result, OrderNotFound) for result in results)
    with pytest.raises(OrderNotFound):
        await rig.connector.resolve_order(KETTLE)
    assert orders.call_count == 2


# --- The answers used here are Amazon's ------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["NotFound", "InvalidInput", "QuotaExceeded", "Unauthorized", "InternalFailure"]
)
def test_error_bodies_used_here_validate_against_the_models_error_list(
    code: str, amazon_orders_model: dict[str, Any]
) -> None:
    schema = {"$ref": "#/definitions/ErrorList", "definitions": amazon_orders_model["definitions"]}
    jsonschema.Draft4Validator(schema).validate(json.loads(json.dumps(error_list(code))))
