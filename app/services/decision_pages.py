"""Reading decisions back: one with what happened to it, pages behind an opaque cursor (the webhook
inbox's list pages with the same cursor), counts by group."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import decisions
from app.db import outcomes as outcome_rows
from app.db.decisions import DecisionFilters, DecisionGroup, PagePosition
from app.db.tables import Decision as DecisionRow
from app.errors import DecisionNotFound, InvalidCursor
from app.services import actions, outcomes
from app.services.api_keys import Caller, Scope
from app.services.webhooks import return_status

# A cursor names its list: one list's cursor is refused by another. Decision ids are UUIDs; the webhook
# inbox's are Shopify's webhook ids, kept as text.
DECISIONS = "d1"
WEBHOOK_EVENTS = "w1"


def encode_cursor(position: PagePosition, of: str = DECISIONS) -> str:
    key = position.id.hex if isinstance(position.id, uuid.UUID) else position.id
    raw = f"{of}|{position.created_at.isoformat()}|{key}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, of: str = DECISIONS) -> PagePosition:
    """The position a cursor of list `of` names; `InvalidCursor` for anything this service did not give."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, created_at, key = raw.split("|", 2)
        position = PagePosition(
            datetime.fromisoformat(created_at), uuid.UUID(hex=key) if of == DECISIONS else key
        )
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidCursor("The cursor is malformed; pass back a next_cursor as it was given.") from error
    if version != of or position.created_at.tzinfo is None:
        raise InvalidCursor("The cursor is malformed; pass back a next_cursor as it was given.")
    return position


@dataclass(frozen=True)
class DecisionPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


async def page(
    session: AsyncSession, filters: DecisionFilters, cursor: str | None, limit: int
) -> DecisionPage:
    after = decode_cursor(cursor) if cursor is not None else None
    listed = await decisions.list_newest_first(session, filters, after, limit + 1)
    more = len(listed) > limit
    listed = listed[:limit]
    return DecisionPage(
        items=[decision.answer for decision in listed],
        next_cursor=encode_cursor(listed[-1].position) if more else None,
    )


async def stats(session: AsyncSession, group_by: str, filters: DecisionFilters) -> list[DecisionGroup]:
    return await decisions.count_by_group(session, group_by, filters)


def visible_only_to(caller: Caller) -> str | None:
    """Whose decisions `caller` may see: None for every decision (`read`), else its own key's (`route`)."""
    return None if Scope.read in caller.scopes else caller.key_id


async def find(session: AsyncSession, decision_id: str, *, visible_to: Caller | None = None) -> DecisionRow:
    """The decision `decision_id` names, if `visible_to` (when given) may see it; else `DecisionNotFound`.

    A malformed id is not found, like any other unknown one.
    """
    try:
        row = await decisions.get(session, uuid.UUID(decision_id))
    except ValueError:
        row = None
    only = visible_only_to(visible_to) if visible_to is not None else None
    if row is None or (only is not None and row.api_key_id != only):
        raise DecisionNotFound(f"No decision {decision_id}.")
    return row


async def detail(session: AsyncSession, row: DecisionRow) -> dict[str, Any]:
    """A decision as it was answered, with the actions taken on it, the Returns it concerns and
    its outcome."""
    taken = await actions.for_decision(session, row.id)
    returns = await return_status.for_decision(session, row, taken)
    outcome = outcomes.answer(await outcome_rows.get(session, row.id))
    return {**row.answer, "actions": taken, "shopify_returns": returns, "outcome": outcome}
