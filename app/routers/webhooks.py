"""`POST /webhooks/shopify`: verify, store, answer at once; and the inbox as operators see it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from app.errors import InvalidSignature
from app.routers.deps import ChannelsDep, Cursor, DatabaseDep, Limit, ReadCaller, SessionDep, problems
from app.services.webhooks import inbox
from app.services.webhooks.inbox import EventStatus
from app.services.webhooks.signature import signing_channel

router = APIRouter(tags=["webhooks"])

PATH = "/webhooks/shopify"
# Shopify's payloads are far smaller; anything bigger is not read further (enforced by app.limits).
MAX_BODY_BYTES = 1_000_000
# Without it, a delivery's body is not read at all (app.limits).
SIGNATURE_HEADER = b"x-shopify-hmac-sha256"


async def arrival() -> datetime:
    """When a delivery arrived. The moments a delivery states are believed only near this one."""
    return datetime.now(UTC)


ArrivedAt = Annotated[datetime, Depends(arrival)]


class WebhookAck(BaseModel):
    webhook_id: str
    status: Literal["accepted", "duplicate"]


@router.post(
    PATH,
    response_model=WebhookAck,
    operation_id="receive_shopify_webhook",
    response_description="Stored (`accepted`), or stored already (`duplicate`).",
    responses=problems(400, 401, 413, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
        }
    },
)
async def receive_shopify_webhook(
    request: Request,
    channels: ChannelsDep,
    database: DatabaseDep,
    received_at: ArrivedAt,
    hmac_signature: Annotated[
        str | None,
        Header(
            alias="X-Shopify-Hmac-Sha256",
            description="Base64 HMAC-SHA256 of the raw body with the app's client secret.",
            examples=["XWmrwMey6OsLMeiZKwP4FppHH3cmAiiJJAweH5Jo4bM="],
        ),
    ] = None,
    topic: Annotated[
        str | None, Header(alias="X-Shopify-Topic", description="The topic.", examples=["returns/request"])
    ] = None,
    shop_domain: Annotated[
        str | None,
        Header(
            alias="X-Shopify-Shop-Domain",
            description="The store, which picks the channel and its secrets.",
            examples=["example.myshopify.com"],
        ),
    ] = None,
    webhook_id: Annotated[
        str | None,
        Header(
            alias="X-Shopify-Webhook-Id",
            description="The delivery's id: the same id again is a duplicate.",
            examples=["b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"],
        ),
    ] = None,
    triggered_at: Annotated[
        str | None,
        Header(
            alias="X-Shopify-Triggered-At",
            description="When Shopify triggered it (RFC 3339).",
            examples=["2026-12-03T15:00:00.000000Z"],
        ),
    ] = None,
    api_version: Annotated[
        str | None,
        Header(alias="X-Shopify-API-Version", description="The payload's API version.", examples=["2026-10"]),
    ] = None,
) -> WebhookAck:
    """A Shopify webhook, signed with the app's client secret (`X-Shopify-Hmac-Sha256`).

    A bad or missing signature is 401 and stores nothing. A signed event is stored and answered
    200 at once; the worker (`python -m app worker`) processes it. The same `X-Shopify-Webhook-Id`
    again is answered 200 (`duplicate`) and not processed again. Topics the service does not
    handle are stored and ignored.
    """
    body = await request.body()  # at most MAX_BODY_BYTES: app.limits refuses more at the door
    channel = signing_channel(channels, shop_domain, body, hmac_signature)
    if channel is None:
        raise InvalidSignature("X-Shopify-Hmac-Sha256 is missing or does not match a configured secret.")
    delivery = inbox.read_delivery(
        body,
        webhook_id=webhook_id,
        topic=topic,
        shop_domain=shop_domain,
        api_version=api_version,
        triggered_at=triggered_at,
        received_at=received_at,
    )
    stored = await inbox.store(database, channel, delivery, received_at)
    return WebhookAck(webhook_id=delivery.webhook_id, status="accepted" if stored else "duplicate")


class WebhookEventView(BaseModel):
    webhook_id: str
    channel: str
    topic: str
    status: EventStatus
    subject: str | None
    attempts: int
    received_at: AwareDatetime
    occurred_at: AwareDatetime
    next_attempt_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    outcome: str | None
    last_error: str | None


class WebhookEventList(BaseModel):
    items: list[WebhookEventView] = Field(description="Newest received first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


@router.get(
    "/v1/webhooks/events",
    response_model=WebhookEventList,
    operation_id="list_webhook_events",
    response_description="A page of events, newest received first, and the cursor of the next.",
    responses=problems(401, 403, 422, 503),
)
async def list_webhook_events(
    _caller: ReadCaller,
    session: SessionDep,
    status: Annotated[
        EventStatus | None, Query(description="Only events in this status.", examples=["parked"])
    ] = None,
    topic: Annotated[
        str | None, Query(max_length=100, description="Only this topic's.", examples=["returns/request"])
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> WebhookEventList:
    """The received webhook events, newest first, a page at a time: `status=parked` lists the ones that
    failed for good, each with its last error (`python -m app webhooks requeue ID` sends one round again).

    The cursor is a position, as on `GET /v1/decisions`: events received while paging do not shift
    or repeat the pages that follow.
    """
    rows, next_cursor = await inbox.recent(session, status, topic, cursor, limit)
    return WebhookEventList(
        items=[
            WebhookEventView(
                webhook_id=row.id,
                channel=row.channel,
                topic=row.topic,
                status=EventStatus(row.status),
                subject=row.subject,
                attempts=row.attempts,
                received_at=row.received_at,
                occurred_at=row.occurred_at,
                next_attempt_at=row.next_attempt_at if row.status == EventStatus.pending else None,
                finished_at=row.finished_at,
                outcome=row.outcome,
                last_error=row.last_error,
            )
            for row in rows
        ],
        next_cursor=next_cursor,
    )
