"""What a webhook may not do even when signed, and what an unsigned one may not cost.

A signed body can be replayed with new headers (`X-Shopify-Webhook-Id` and `X-Shopify-Triggered-At`
are not signed), may carry fields Shopify adds tomorrow, and may be shaped to break the parser; an
unsigned one must not hold memory the service needs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.tables import Decision, WebhookEvent
from app.main import create_app
from app.routers import webhooks
from app.runtime import Runtime
from app.services.webhooks.worker import Worker
from app.settings import Settings
from tests.asgi import raw_scope
from tests.webhook_builders import delivery, refund_payload, return_request_payload

URL = "/webhooks/shopify"
ARRIVED = datetime(2026, 11, 20, 15, 0, 5, tzinfo=UTC)


@pytest.fixture
def arriving(app: FastAPI) -> Iterator[None]:
    """Every delivery arrives at ARRIVED, whatever it says of itself."""
    suite = app.dependency_overrides[webhooks.arrival]
    app.dependency_overrides[webhooks.arrival] = lambda: ARRIVED
    yield
    app.dependency_overrides[webhooks.arrival] = suite


@pytest.fixture
async def answering(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the 500 a bug would answer, instead of the exception behind it."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as http:
        yield http


async def stored(sessions: async_sessionmaker[AsyncSession], webhook_id: str) -> WebhookEvent:
    async with sessions() as session:
        event = await session.get(WebhookEvent, webhook_id)
    assert event is not None
    return event


def assert_malformed(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "malformed_body"
    assert detail in response.json()["detail"]


# --- Dates a delivery states ----------------------------------------------------------------


TRIGGERED = datetime(2026, 11, 20, 15, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("triggered_at", "payload_dates", "dated"),
    [
        ("2020-01-06T09:00:00Z", {}, ARRIVED),  # the header, rewritten
        ("2027-03-01T00:00:00Z", {}, ARRIVED),  # from the future
        # A body from 2020: its own dates are not believed either; a believable header is.
        ("2026-11-20T15:00:00Z", {"updated_at": "2020-01-06T09:00:00-05:00"}, TRIGGERED),
        ("2026-11-20T15:00:00Z", {"created_at": "2020-01-06T09:00:00-05:00"}, TRIGGERED),
        ("2020-01-06T09:00:00Z", {"updated_at": "2020-01-06T09:00:00-05:00"}, ARRIVED),
    ],
)
async def test_a_replayed_body_cannot_date_a_decision_in_2020(
    answering: httpx.AsyncClient,
    runtime: Runtime,
    sessions: async_sessionmaker[AsyncSession],
    arriving: None,
    triggered_at: str,
    payload_dates: dict[str, str],
    dated: datetime,
) -> None:
    body, headers = delivery(return_request_payload(**payload_dates), triggered_at=triggered_at)

    response = await answering.post(URL, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert await Worker(runtime.database, runtime.handlers).process_next()

    event = await stored(sessions, headers["X-Shopify-Webhook-Id"])
    assert event.occurred_at == dated
    assert event.triggered_at == (TRIGGERED if dated == TRIGGERED else None)  # not believed: not kept
    async with sessions() as session:
        [decision] = (await session.scalars(select(Decision))).all()
    assert decision.as_of == dated


async def test_the_dates_of_a_prompt_delivery_are_believed(
    answering: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], arriving: None
) -> None:
    body, headers = delivery(return_request_payload(), triggered_at="2026-11-20T14:59:58Z")
    assert (await answering.post(URL, content=body, headers=headers)).status_code == 200
    event = await stored(sessions, headers["X-Shopify-Webhook-Id"])
    assert event.occurred_at == event.triggered_at == datetime(2026, 11, 20, 14, 59, 58, tzinfo=UTC)


# --- What is stored -------------------------------------------------------------------------


async def test_only_the_fields_the_service_reads_are_stored(
    answering: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    payload = return_request_payload()
    payload["shipping_address"] = {"address1": "4417 Rue Saint-Denis"}  # a field Shopify might add
    payload["buyer_feedback"] = {"text": "Call me at 555-0100"}
    payload["return_line_items"][0]["gift_message"] = "For Genevieve"
    payload["order"]["email"] = "genevieve@example.com"
    body, headers = delivery(payload)

    assert (await answering.post(URL, content=body, headers=headers)).status_code == 200

    event = await stored(sessions, headers["X-Shopify-Webhook-Id"])
    assert event.payload is not None
    kept = json.dumps(event.payload)
    for secret in ("Saint-Denis", "555-0100", "Genevieve", "genevieve@", "customer_note", "Jane"):
        assert secret not in kept
    assert set(event.payload) == {
        "id",
        "admin_graphql_api_id",
        "status",
        "order",
        "return_line_items",
        "exchange_line_items",
    }
    [line] = event.payload["return_line_items"]
    assert line["fulfillment_line_item"]["line_item"]["id"] == 1071823172
    assert (line["quantity"], line["return_reason"]) == (1, "size_too_small")


async def test_a_refund_keeps_what_it_covered_and_only_the_marker_of_its_note(
    answering: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    payload = refund_payload(note="Refunded by Sam, called Jane at 555-0100")
    payload["refund_line_items"][0]["line_item"] = {"id": 1071823172, "properties": [{"engraving": "Jane"}]}
    body, headers = delivery(payload, topic="refunds/create")

    assert (await answering.post(URL, content=body, headers=headers)).status_code == 200

    event = await stored(sessions, headers["X-Shopify-Webhook-Id"])
    assert event.payload is not None
    assert "note" not in event.payload
    assert "Jane" not in json.dumps(event.payload)
    assert event.payload["refund_line_items"] == [
        {
            "line_item_id": 1071823172,
            "quantity": 1,
            "subtotal_set": {"presentment_money": {"currency_code": "CAD"}},
        }
    ]


# --- Bodies shaped to break the parser or the database -----------------------------------------


@pytest.mark.parametrize("depth", [500, 30_000])
async def test_a_signed_body_nested_too_deep_is_malformed(
    answering: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], depth: int
) -> None:
    deep = b'{"deeper": ' * (depth - 1) + b"{}" + b"}" * (depth - 1)
    body, headers = delivery(
        json.dumps(return_request_payload()).encode()[:-1] + b', "extra": ' + deep + b"}"
    )

    response = await answering.post(URL, content=body, headers=headers)

    assert_malformed(response, "nested deeper than 64 levels")
    async with sessions() as session:
        assert (await session.scalars(select(WebhookEvent))).all() == []


async def test_a_nul_in_a_field_the_service_reads_is_malformed(answering: httpx.AsyncClient) -> None:
    body, headers = delivery(return_request_payload(status="requested\u0000"))

    assert_malformed(await answering.post(URL, content=body, headers=headers), "NUL")


async def test_a_nul_in_a_field_the_service_does_not_read_is_dropped_with_it(
    answering: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    payload = return_request_payload()
    payload["return_line_items"][0]["customer_note"] = "see attached\u0000"
    body, headers = delivery(payload)

    assert (await answering.post(URL, content=body, headers=headers)).status_code == 200
    assert (await stored(sessions, headers["X-Shopify-Webhook-Id"])).payload is not None


async def test_payload_dates_beyond_the_calendar_are_not_believed(
    answering: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], arriving: None
) -> None:
    payload = return_request_payload(
        updated_at="0001-01-01T00:00:00+05:00", created_at="9999-12-31T23:59:59Z"
    )
    body, headers = delivery(payload, triggered_at="0001-01-01T00:00:00+01:00")

    assert (await answering.post(URL, content=body, headers=headers)).status_code == 200
    assert (await stored(sessions, headers["X-Shopify-Webhook-Id"])).occurred_at == ARRIVED


# --- Unsigned bodies ---------------------------------------------------------------------------


def raw_request(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return raw_scope(URL, [(b"content-type", b"application/json"), *headers])


class Trickle:
    """A client that sends `chunks` chunks of its body at once, then nothing more, never its end."""

    def __init__(self, chunk: bytes, chunks: int) -> None:
        self.chunk = chunk
        self.left = chunks
        self.sent = 0

    async def receive(self) -> dict[str, Any]:
        if not self.left:
            await asyncio.Event().wait()  # until the request is cancelled
        self.left -= 1
        self.sent += len(self.chunk)
        return {"type": "http.request", "body": self.chunk, "more_body": True}


async def answer_of(app: FastAPI, scope: dict[str, Any], receive: Any) -> dict[str, Any]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with asyncio.timeout(10):  # far longer than an answer takes: no answer is a hang
        await app(scope, receive, send)
    start = sent[0]
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    return {"status": start["status"], "headers": dict(start["headers"]), **body}


async def test_a_body_without_a_signature_is_not_read(app: FastAPI) -> None:
    trickle = Trickle(b" " * 1024, chunks=1000)

    answer = await answer_of(app, raw_request([(b"x-shopify-topic", b"returns/request")]), trickle.receive)

    assert (answer["status"], answer["code"]) == (401, "invalid_signature")
    assert trickle.sent == 0


@pytest.fixture
async def small_budget(settings: Settings) -> AsyncIterator[FastAPI]:
    """The service holding at most 1 MB of unverified webhook bodies at once."""
    application = create_app(settings.model_copy(update={"webhook_unverified_bytes": 1_000_000}))
    async with application.router.lifespan_context(application):
        yield application


async def test_unverified_bodies_in_flight_share_one_budget(small_budget: FastAPI) -> None:
    signed = raw_request([(b"x-shopify-hmac-sha256", b"bm90IHRoZSBzaWduYXR1cmUgb2YgdGhpcyBib2R5IQ==")])
    slow = Trickle(b" " * 100_000, chunks=9)  # 900 kB held, and the rest never comes
    holding = asyncio.create_task(answer_of(small_budget, signed, slow.receive))
    async with asyncio.timeout(10):
        while slow.sent < 900_000:
            await asyncio.sleep(0.01)

    refused = await answer_of(small_budget, signed, Trickle(b" " * 200_000, chunks=5).receive)

    assert (refused["status"], refused["code"]) == (503, "overloaded")
    assert refused["headers"][b"retry-after"] == b"5"
    holding.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holding
    # Given back when the slow request ended: a whole body of the same size is read, and checked.
    whole = iter([{"type": "http.request", "body": b"{}" + b" " * 200_000, "more_body": False}])

    async def receive() -> dict[str, Any]:
        return next(whole)

    answer = await answer_of(small_budget, signed, receive)
    assert (answer["status"], answer["code"]) == (401, "invalid_signature")
