"""A database error logs and stores no values: the statement's parameters and the driver's DETAIL
(`Key (id)=(...) already exists`, a failing row) carry ticket ids and order snapshots."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import WebhookEvent
from app.problems import install
from app.runtime import Runtime
from app.services.webhooks.handlers import Apply, Handler
from app.services.webhooks.worker import Worker
from tests.webhook_builders import delivery, return_request_payload

TICKET = "T-553912-ZD"  # what a helpdesk would send, and what must not be written anywhere

# An API key whose id is the ticket: inserted twice, the second is refused with the id in its DETAIL.
INSERT = text(
    "INSERT INTO api_keys (id, name, scopes, secret_hash, created_at) "
    "VALUES (:id, 'helpdesk', 'read', 'x', :now)"
)


async def insert_twice(session: AsyncSession) -> None:
    for _ in range(2):
        await session.execute(INSERT, {"id": TICKET, "now": datetime.now(UTC)})


async def test_an_unexpected_database_error_is_logged_without_its_values(
    runtime: Runtime, log_lines: io.StringIO
) -> None:
    application = FastAPI()
    install(application)

    @application.post("/fails")
    async def fails() -> None:
        async with runtime.database.transaction() as session:
            await insert_twice(session)

    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as http:
        response = await http.post("/fails")

    assert (response.status_code, response.json()["code"]) == (500, "internal_error")
    [line] = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert line["event"] == "unhandled_error"
    assert line["database_error"] in (
        "sqlalchemy.IntegrityError from asyncpg.UniqueViolationError (SQLSTATE 23505)",
        "sqlalchemy.IntegrityError from sqlite3.IntegrityError",
    )
    assert "insert_twice" in line["stack"]  # where it happened
    assert TICKET not in log_lines.getvalue()


async def test_a_webhook_event_failing_in_the_database_keeps_no_values_in_its_error(
    client: httpx.AsyncClient, runtime: Runtime, log_lines: io.StringIO
) -> None:
    async def prepare(event: WebhookEvent, now: datetime) -> Apply:
        return insert_and_say

    async def insert_and_say(session: AsyncSession) -> str:
        await insert_twice(session)
        return "never"

    body, headers = delivery(return_request_payload())
    assert (await client.post("/webhooks/shopify", content=body, headers=headers)).status_code == 200
    worker = Worker(runtime.database, {"returns/request": Handler(prepare)})
    assert await worker.process_next()

    async with runtime.database.reading() as session:
        event = await session.get(WebhookEvent, headers["X-Shopify-Webhook-Id"])
    assert event is not None
    assert event.status == "pending"  # to be tried again
    assert event.last_error is not None
    assert event.last_error.startswith("sqlalchemy.IntegrityError from ")
    assert TICKET not in event.last_error
    assert TICKET not in log_lines.getvalue()
