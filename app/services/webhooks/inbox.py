"""Taking a verified delivery in: checked, cut down to the fields the service reads, and stored once by
its webhook id.

Nothing is processed here: the answer to Shopify must come at once, and the worker does the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.channels import ShopifyChannel
from app.connectors.payload import aware_moment
from app.db import webhook_events
from app.db.database import Database
from app.db.decisions import PagePosition
from app.db.tables import WebhookEvent
from app.db.webhook_events import EventStatus as EventStatus  # the statuses operators filter by
from app.errors import MalformedBody, ValidationProblem
from app.services.decision_pages import WEBHOOK_EVENTS, decode_cursor, encode_cursor
from app.services.webhooks import kept_fields
from app.services.webhooks.handlers import SUBSCRIBED_TOPICS

_KIND_OF_TOPIC = {"returns": "Return", "refunds": "Refund"}
_TOPIC = re.compile(r"^[a-z_]{1,48}/[a-z_]{1,48}$")
_WEBHOOK_ID = re.compile(r"^[\x21-\x7E]{1,255}$")

# Shopify retries a delivery for up to 48 hours. A moment a delivery states (its unsigned
# `X-Shopify-Triggered-At`, or its payload's `updated_at`, which a replayed body carries from long
# ago) is believed only between that long before its arrival and a little after it.
DELIVERY_AGE = timedelta(hours=49)
CLOCK_SKEW = timedelta(minutes=5)
# Shopify's payloads are a few levels deep; one far deeper is not a payload of theirs.
MAX_DEPTH = 64


@dataclass(frozen=True)
class Delivery:
    """A webhook as Shopify delivered it, after its signature verified."""

    webhook_id: str
    topic: str
    shop_domain: str | None
    api_version: str | None
    triggered_at: datetime | None  # None when absent, or when it is not to be believed
    payload: dict[str, Any]
    stored: dict[str, Any] | None  # what of the payload is stored: the fields the handlers read


def read_delivery(
    body: bytes,
    *,
    webhook_id: str | None,
    topic: str | None,
    shop_domain: str | None,
    api_version: str | None,
    triggered_at: str | None,
    received_at: datetime,
) -> Delivery:
    """The delivery, checked: its headers, its JSON, and what of its payload is to be stored."""
    problems = []
    if webhook_id is None or not _WEBHOOK_ID.match(webhook_id):
        problems.append(_header_error("X-Shopify-Webhook-Id", "1-255 visible ASCII characters"))
    if topic is None or not _TOPIC.match(topic):
        problems.append(_header_error("X-Shopify-Topic", "a topic such as returns/request"))
    if webhook_id is None or topic is None or problems:
        raise ValidationProblem("The delivery's headers are incomplete; see errors.", errors=problems)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedBody("The body could not be parsed as JSON.") from error
    except RecursionError as error:
        raise MalformedBody(f"The body is nested deeper than {MAX_DEPTH} levels.") from error
    if not isinstance(payload, dict):
        raise MalformedBody("The body is not a JSON object.")
    if _depth(payload) > MAX_DEPTH:
        raise MalformedBody(f"The body is nested deeper than {MAX_DEPTH} levels.")
    return Delivery(
        webhook_id=webhook_id,
        topic=topic,
        shop_domain=(shop_domain or "")[:255] or None,
        api_version=(api_version or "")[:32] or None,
        triggered_at=_believed(aware_moment(triggered_at), received_at),
        payload=payload,
        stored=kept_fields.kept(topic, payload),
    )


async def store(database: Database, channel: ShopifyChannel, delivery: Delivery, now: datetime) -> bool:
    """Store the event for the worker; False when this webhook id was stored before (a redelivery)."""
    payload = delivery.payload
    values: dict[str, Any] = dict(
        id=delivery.webhook_id,
        channel=channel.key,
        topic=delivery.topic,
        shop_domain=delivery.shop_domain,
        api_version=delivery.api_version,
        subject=_subject(delivery.topic, payload),
        triggered_at=delivery.triggered_at,
        occurred_at=occurred_at(payload, delivery.triggered_at, now),
        received_at=now,
        # Topics the service does not subscribe to may carry anything (orders carry addresses):
        # they are recorded, not kept.
        payload=delivery.stored if delivery.topic in SUBSCRIBED_TOPICS else None,
        status=EventStatus.pending,
        attempts=0,
        next_attempt_at=now,
    )
    async with database.transaction() as session:
        return await webhook_events.insert_if_absent(session, values)


async def recent(
    session: AsyncSession, status: EventStatus | None, topic: str | None, cursor: str | None, limit: int
) -> tuple[Sequence[WebhookEvent], str | None]:
    """The received events newest first, a page at a time, as operators see the inbox; and the cursor
    of the next page (None on the last). The cursor is a position, as for the decisions' pages."""
    after = decode_cursor(cursor, of=WEBHOOK_EVENTS) if cursor is not None else None
    rows = await webhook_events.list_recent(session, status, topic, after, limit + 1)
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(PagePosition(last.received_at, last.id), of=WEBHOOK_EVENTS)


def occurred_at(payload: dict[str, Any], triggered_at: datetime | None, received_at: datetime) -> datetime:
    """When the change happened, to order events: the resource's own `updated_at` when the payload
    has one, else Shopify's trigger time, else the resource's `created_at`, else the arrival; each
    only when it is to be believed (see `DELIVERY_AGE`)."""
    for moment in (
        aware_moment(payload.get("updated_at")),
        triggered_at,
        aware_moment(payload.get("created_at")),
    ):
        believed = _believed(moment, received_at)
        if believed is not None:
            return believed
    return received_at


def _believed(moment: datetime | None, received_at: datetime) -> datetime | None:
    """`moment` if a delivery received at `received_at` may state it; else None."""
    if moment is None or not received_at - DELIVERY_AGE <= moment <= received_at + CLOCK_SKEW:
        return None
    return moment


def _depth(value: Any) -> int:
    """How deeply a parsed JSON value nests (an object or array is one level), without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        pending.extend((child, depth + 1) for child in children)
    return deepest


def _subject(topic: str, payload: dict[str, Any]) -> str | None:
    """The resource the event is about (the Return, the Refund), by its GID."""
    gid = payload.get("admin_graphql_api_id")
    if isinstance(gid, str) and gid.startswith("gid://"):
        return gid[:255]
    # Some payloads name the resource only by its numeric id.
    kind = _KIND_OF_TOPIC.get(topic.split("/")[0])
    number = payload.get("id")
    if kind is not None and isinstance(number, int) and number > 0:
        return f"gid://shopify/{kind}/{number}"
    return None


def _header_error(header: str, expected: str) -> dict[str, Any]:
    return {"loc": ["header", header], "msg": f"expected {expected}", "type": "value_error"}
