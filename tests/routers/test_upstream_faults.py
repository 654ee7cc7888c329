"""Amazon misbehaving under `POST /v1/returns/route`: the whole app with live credentials against a
stand-in on a real socket (tests/connectors/faulty_amazon.py), on both outbound transports.

Each fault ends in the contract's status and `code`, with no decision stored and the
Idempotency-Key freed, after the bounded number of calls; and the same request succeeds once the
stand-in answers normally again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connectors import amazon, amazon_auth
from app.db.tables import Decision as DecisionRow
from app.db.tables import IdempotencyRecord
from app.services.api_keys import Scope
from app.settings import Settings
from tests.conftest import MakeKey, Metrics, serving
from tests.connectors.conftest import FIXTURES
from tests.connectors.faulty_amazon import (
    FaultyAmazon,
    Reply,
    answer,
    reset_mid_body,
    silence,
    stalled_body,
)

KETTLE = "113-4567890-1234567"
ORDER = json.loads((FIXTURES / "amazon_us" / f"{KETTLE}.json").read_text(encoding="utf-8"))
RAW_ORDER = json.dumps(ORDER).encode()
BODY = {"order_ref": KETTLE, "reason": "damaged", "as_of": "2026-12-03T15:00:00Z"}
ATTEMPTS = amazon.RETRY.attempts
CLIENT_SECRET, REFRESH_TOKEN = "client-secret-7b", "Atzr|refresh-7b"


def use_timeout(monkeypatch: pytest.MonkeyPatch, timeout: httpx.Timeout) -> None:
    monkeypatch.setattr(amazon, "TIMEOUT", timeout)
    monkeypatch.setattr(amazon_auth, "TIMEOUT", timeout)


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-second read timeout and quick backoff; the number of attempts stays production's.

    Connecting to the stand-in on loopback gets a generous bound, so a busy machine is not taken for
    a fault; the connect-timeout test shortens it itself.
    """
    use_timeout(monkeypatch, httpx.Timeout(1.0, connect=5.0))
    monkeypatch.setattr(amazon, "RETRY", dataclasses.replace(amazon.RETRY, base_delay=0.01, max_delay=0.02))


def fault_settings(settings: Settings, standin: FaultyAmazon, transport: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=settings.database_url,
        log_format="json",
        log_level="WARNING",
        http_transport=transport,
        channel_amazon_us_lwa_client_id="amzn1.application-oa2-client.faults",
        channel_amazon_us_lwa_client_secret=CLIENT_SECRET,
        channel_amazon_us_refresh_token=REFRESH_TOKEN,
        channel_amazon_us_endpoint=standin.url,
        channel_amazon_us_lwa_token_url=standin.token_url,
        # A fast plan: a 429 empties our bucket, and its refill must not slow the test down.
        channel_amazon_us_get_order_rate=50,
    )


@dataclass(frozen=True)
class Fault:
    name: str
    endpoint: Literal["token", "order"]
    reply: Callable[[], Reply]
    times: int  # how often the stand-in misbehaves: as often as the service will try
    status: int
    code: str


RETRIED, ONCE = ATTEMPTS, 1
INTERNAL_FAILURE = {"errors": [{"code": "InternalFailure"}]}
QUOTA_EXCEEDED = {"errors": [{"code": "QuotaExceeded"}]}
INVALID_GRANT = {"error": "invalid_grant", "error_description": f"refresh token {REFRESH_TOKEN} revoked"}
UNAVAILABLE, RATE_LIMITED = (503, "upstream_unavailable"), (503, "upstream_rate_limited")
TIMED_OUT, BAD_RESPONSE, AUTH_FAILED = (
    (504, "upstream_timeout"),
    (502, "upstream_bad_response"),
    (502, "upstream_auth_failed"),
)
FAULTS = [
    Fault("getOrder 500", "order", lambda: answer(500, INTERNAL_FAILURE), RETRIED, *UNAVAILABLE),
    Fault("getOrder 504", "order", lambda: answer(504, b""), RETRIED, *TIMED_OUT),
    Fault(
        "getOrder 429 without Retry-After",
        "order",
        lambda: answer(429, QUOTA_EXCEEDED),
        RETRIED,
        *RATE_LIMITED,
    ),
    Fault("getOrder malformed JSON", "order", lambda: answer(200, b"<html>busy</html>"), ONCE, *BAD_RESPONSE),
    Fault("getOrder truncated JSON", "order", lambda: answer(200, RAW_ORDER[:300]), ONCE, *BAD_RESPONSE),
    Fault("getOrder reset mid-body", "order", lambda: reset_mid_body(ORDER), RETRIED, *UNAVAILABLE),
    Fault("getOrder read timeout", "order", silence, RETRIED, *TIMED_OUT),
    Fault(
        "getOrder body slower than the read timeout",
        "order",
        lambda: stalled_body(ORDER),
        RETRIED,
        *TIMED_OUT,
    ),
    Fault("token 500", "token", lambda: answer(500, {"error": "server_error"}), RETRIED, *UNAVAILABLE),
    Fault("token read timeout", "token", silence, RETRIED, *TIMED_OUT),
    Fault("token 400 invalid_grant", "token", lambda: answer(400, INVALID_GRANT), ONCE, *AUTH_FAILED),
]


async def count(sessions: async_sessionmaker[AsyncSession], table: type[Any]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
async def headers(make_key: MakeKey) -> dict[str, str]:
    return {**await make_key(Scope.route), "Idempotency-Key": "fault-1"}


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
async def test_a_fault_is_the_contract_error_with_nothing_written_then_service_recovers(
    fault: Fault,
    transport: str,
    settings: Settings,
    headers: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with FaultyAmazon({KETTLE: ORDER}) as standin:
        faults = standin.token_faults if fault.endpoint == "token" else standin.order_faults
        faults.extend(fault.reply() for _ in range(fault.times))
        async with serving(fault_settings(settings, standin, transport)) as client:
            failed = await client.post("/v1/returns/route", json=BODY, headers=headers)

            assert failed.status_code == fault.status, failed.text
            assert failed.headers["content-type"] == "application/problem+json"
            assert failed.json()["code"] == fault.code
            if fault.status == 503:
                assert int(failed.headers["Retry-After"]) >= 1
            assert REFRESH_TOKEN not in failed.text
            # Retried exactly as often as the policy allows (temporary faults), or not at all.
            if fault.endpoint == "token":
                assert (standin.token_calls, standin.order_calls) == (fault.times, 0)
            else:
                assert (standin.token_calls, standin.order_calls) == (1, fault.times)
            assert await count(sessions, DecisionRow) == 0
            assert await count(sessions, IdempotencyRecord) == 0

            # The stand-in answers normally again: the same request, under the same key, is served.
            again = await client.post("/v1/returns/route", json=BODY, headers=headers)
            assert again.status_code == 201, again.text
            assert "idempotent-replayed" not in again.headers
            assert await count(sessions, DecisionRow) == 1


def samples(exposition: str, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name.startswith(prefix)
    }


def value(
    exposed: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    name: str,
    **labels: str,
) -> float:
    return exposed.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_a_connect_timeout_is_a_504_retried_and_counted_then_recovers(
    transport: str,
    settings: Settings,
    headers: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    metrics: Metrics,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_timeout(monkeypatch, httpx.Timeout(1.0, connect=0.5))
    async with FaultyAmazon({KETTLE: ORDER}, unanswered=True) as standin:
        async with serving(fault_settings(settings, standin, transport)) as client:
            failed = await client.post("/v1/returns/route", json=BODY, headers=headers)

            assert failed.status_code == 504, failed.text
            assert failed.json()["code"] == "upstream_timeout"
            # The token is the first call: it never connects, on any attempt.
            token = {"upstream": "amazon_us.lwa_token"}
            assert (
                metrics.value("returns_router_upstream_calls_total", **token, outcome="timeout") == ATTEMPTS
            )
            retries = {"upstream": "amazon_us.get_order", "code": "upstream_timeout"}
            assert metrics.value("returns_router_upstream_retries_total", **retries) == ATTEMPTS - 1
            assert await count(sessions, DecisionRow) == 0

            await standin.answer_again()
            again = await client.post("/v1/returns/route", json=BODY, headers=headers)
            assert again.status_code == 201, again.text
            assert (standin.token_calls, standin.order_calls) == (1, 1)


async def test_metrics_count_amazon_calls_by_outcome_with_no_secret_or_order_in_labels(
    settings: Settings, make_key: MakeKey, metrics: Metrics
) -> None:
    route_headers = await make_key(Scope.route)
    async with FaultyAmazon({KETTLE: ORDER}) as standin:
        standin.order_faults.append(answer(429, {"errors": [{"code": "QuotaExceeded"}]}))
        # Two tokens a second: after the 429 empties our bucket, the retry finds no token for half a
        # second, however slow the machine (at fifty a second a busy one found the token back).
        slow_refill = fault_settings(settings, standin, "aiohttp").model_copy(
            update={"channel_amazon_us_get_order_rate": 2}
        )
        async with serving(slow_refill) as client:
            found = await client.post("/v1/returns/route", json=BODY, headers=route_headers)
            missing = await client.post(
                "/v1/returns/route", json={"order_ref": "113-0000000-0000000"}, headers=route_headers
            )
            exposition = (await client.get("/metrics")).text
    assert (found.status_code, missing.status_code) == (201, 404)

    exposed = samples(exposition, "returns_router_upstream")
    calls, order = "returns_router_upstream_calls_total", {"upstream": "amazon_us.get_order"}
    assert value(exposed, calls, upstream="amazon_us.lwa_token", outcome="ok") == 1
    assert value(exposed, calls, **order, outcome="throttled") == 1
    assert value(exposed, calls, **order, outcome="ok") == 1
    assert value(exposed, calls, **order, outcome="not_found") == 1
    assert value(exposed, "returns_router_upstream_call_duration_seconds_count", **order) == 3
    assert value(exposed, "returns_router_upstream_retries_total", **order, code="upstream_rate_limited") == 1
    # The 429 emptied our bucket: the retry waited its turn.
    assert value(exposed, "returns_router_upstream_throttled_total", **order, action="waited") >= 1

    labels = {label for _, pairs in exposed for _, label in pairs}
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, "Atza|", KETTLE, "113-0000000-0000000", "faults"):
        assert not any(secret in label for label in labels), secret
