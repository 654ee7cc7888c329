"""`POST /webhooks/shopify`: signed deliveries are stored once and answered at once; others store nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.decisions import PagePosition
from app.db.tables import Decision as DecisionRow
from app.db.tables import WebhookEvent
from app.services.api_keys import Scope
from app.services.decision_pages import encode_cursor
from app.settings import Settings
from tests.conftest import MakeKey, serving
from tests.webhook_builders import PREVIOUS_WEBHOOK_SECRET, delivery, return_request_payload

URL = "/webhooks/shopify"


async def stored_events(sessions: async_sessionmaker[AsyncSession]) -> list[WebhookEvent]:
    async with sessions() as session:
        return list((await session.scalars(select(WebhookEvent))).all())


async def test_a_signed_event_is_stored_and_answered_at_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body, headers = delivery(return_request_payload(), webhook_id="wh-1")

    response = await client.post(URL, content=body, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"webhook_id": "wh-1", "status": "accepted"}
    [event] = await stored_events(sessions)
    assert (event.id, event.topic, event.channel, event.status) == (
        "wh-1",
        "returns/request",
        "shopify_ca",
        "pending",
    )
    assert event.subject == "gid://shopify/Return/9001"
    assert event.occurred_at.isoformat() == "2026-11-20T15:00:00.123456+00:00"
    assert event.payload is not None
    # Processing is the worker's: the request made no decision.
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DecisionRow)) == 0


async def test_buyer_notes_are_not_kept(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body, headers = delivery(return_request_payload(), webhook_id="wh-notes")
    assert (await client.post(URL, content=body, headers=headers)).status_code == 200
    [event] = await stored_events(sessions)
    assert b"555-0100" in body
    assert "555-0100" not in str(event.payload)
    assert "customer_note" not in event.payload["return_line_items"][0]  # type: ignore[index]
    assert event.payload["return_line_items"][0]["quantity"] == 1  # type: ignore[index]


@pytest.mark.parametrize(
    "tamper",
    ["no signature", "wrong secret", "tampered body", "signature of another body"],
)
async def test_a_bad_or_missing_signature_is_401_and_stores_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], tamper: str
) -> None:
    payload = return_request_payload()
    if tamper == "no signature":
        body, headers = delivery(payload, secret=None)
    elif tamper == "wrong secret":
        body, headers = delivery(payload, secret="not-the-secret")
    elif tamper == "tampered body":
        body, headers = delivery(payload)
        body = body.replace(b'"quantity": 1', b'"quantity": 9')
    else:
        _, headers = delivery({"other": "body"})
        body, _ = delivery(payload)

    response = await client.post(URL, content=body, headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_signature"
    assert await stored_events(sessions) == []


async def test_the_previous_secret_still_verifies_during_a_rotation(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body, headers = delivery(return_request_payload(), secret=PREVIOUS_WEBHOOK_SECRET)
    assert (await client.post(URL, content=body, headers=headers)).status_code == 200
    assert len(await stored_events(sessions)) == 1


async def test_the_same_event_delivered_five_times_is_stored_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body, headers = delivery(return_request_payload(), webhook_id="wh-again")
    answers = [(await client.post(URL, content=body, headers=headers)).json()["status"] for _ in range(5)]
    assert answers == ["accepted", "duplicate", "duplicate", "duplicate", "duplicate"]
    assert [event.id for event in await stored_events(sessions)] == ["wh-again"]


async def test_a_topic_the_service_does_not_handle_is_stored_without_its_payload(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    order = {"id": 1, "email": "jane@example.com", "shipping_address": {"address1": "1 Main St"}}
    body, headers = delivery(order, topic="orders/create", webhook_id="wh-order")
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code == 200
    [event] = await stored_events(sessions)
    assert (event.topic, event.payload) == ("orders/create", None)


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{not json", {}, 400, "malformed_body"),
        (b"[1, 2]", {}, 400, "malformed_body"),
        (b"{}", {"X-Shopify-Topic": "no topic"}, 422, "validation_error"),
        (b"{}", {"X-Shopify-Webhook-Id": ""}, 422, "validation_error"),
        (b"{}", {"X-Shopify-Webhook-Id": "x" * 256}, 422, "validation_error"),
    ],
)
async def test_signed_but_unusable_deliveries_are_problems(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    signed_body, signed_headers = delivery(body)
    response = await client.post(URL, content=signed_body, headers={**signed_headers, **headers})
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert await stored_events(sessions) == []


async def test_a_body_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    body, headers = delivery(b'{"pad": "' + b"x" * 1_000_001 + b'"}')
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


@pytest.fixture
async def app_without_secrets(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    without = Settings(_env_file=None, database_url=settings.database_url, log_level="WARNING")  # type: ignore[call-arg]
    assert without.channel_shopify_ca_webhook_secrets == []
    async with serving(without) as http:
        yield http


async def test_without_configured_secrets_every_webhook_is_401(
    app_without_secrets: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body, headers = delivery(return_request_payload())
    response = await app_without_secrets.post(URL, content=body, headers=headers)
    assert response.status_code == 401
    assert await stored_events(sessions) == []


async def test_operators_list_events_by_status(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    for webhook_id in ("wh-a", "wh-b"):
        body, headers = delivery(return_request_payload(), webhook_id=webhook_id)
        await client.post(URL, content=body, headers=headers)
    reader = await make_key(Scope.read)

    pending = await client.get("/v1/webhooks/events", params={"status": "pending"}, headers=reader)
    parked = await client.get("/v1/webhooks/events", params={"status": "parked"}, headers=reader)

    assert pending.status_code == 200
    assert {item["webhook_id"] for item in pending.json()["items"]} == {"wh-a", "wh-b"}
    assert parked.json() == {"items": [], "next_cursor": None}
    route_only = await client.get("/v1/webhooks/events", headers=await make_key(Scope.route))
    assert route_only.status_code == 403


async def test_operators_page_through_events_with_a_cursor(
    client: httpx.AsyncClient, make_key: MakeKey, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for n in range(5):
        body, headers = delivery(return_request_payload(), webhook_id=f"wh-{n}")
        await client.post(URL, content=body, headers=headers)
    async with sessions.begin() as session:  # one moment for all: the id breaks the tie
        await session.execute(update(WebhookEvent).values(received_at=datetime(2020, 1, 1, tzinfo=UTC)))
    reader = await make_key(Scope.read)

    seen: list[str] = []
    cursor: str | None = None
    for page_number in range(5):
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/v1/webhooks/events", params=params, headers=reader)
        assert page.status_code == 200, page.text
        seen += [item["webhook_id"] for item in page.json()["items"]]
        if page_number == 0:  # received while paging: newer than the position, never in a later page
            body, headers = delivery(return_request_payload(), webhook_id="wh-late")
            await client.post(URL, content=body, headers=headers)
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break

    assert seen == ["wh-4", "wh-3", "wh-2", "wh-1", "wh-0"]


async def test_a_cursor_of_another_list_is_refused(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    decisions_cursor = encode_cursor(PagePosition(datetime(2026, 12, 3, tzinfo=UTC), uuid.uuid4()))

    response = await client.get(
        "/v1/webhooks/events", params={"cursor": decisions_cursor}, headers=await make_key(Scope.read)
    )

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"
