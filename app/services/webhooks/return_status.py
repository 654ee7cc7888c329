"""`returns/approve|decline|cancel|close|reopen|process|update`: a Return moved on in Shopify.

What they change:

- The Return's latest status is kept (table `shopify_returns`) and shown with the decision it
  concerns in `GET /v1/decisions/{id}`: the decision a customer's `returns/request` made, or the
  decision whose exchange action created the Return. Decisions themselves are never changed.
- An exchange action still pending (`submitted` or `unknown`) that made this Return, or may have
  made it without knowing (same order, the answer naming the Return lost), is settled at once by
  reading the Return back from Shopify (`actions.reconcile`), not from the payload: the read-back
  is what a lost answer is settled by anyway, and it cannot be fooled by an old event. Processed:
  the action succeeds. Declined or canceled before it was processed: the action fails and its
  decision is free for another action. Still open: it is processed, exactly once, as its runner
  would have done. When Shopify cannot be read, the event is retried later.
- The order: `order { id }`, or the top-level `order_id` (`returns/cancel|close|reopen`); a payload
  naming neither (`returns/decline`, `returns/update`) is tied to its order through the Return, read
  back from Shopify, when an exchange whose answer was lost may be waiting on it.
- `returns/update` lists what changed (`return_line_items: {"removals": [...]}`): the outcome says
  which return lines lost how many units; the status stays.

Order: an event older than a change already applied to the same Return is skipped by the worker
(`skip_if_stale`); the row keeps the latest status even against an event that is always handled,
such as a late `returns/request`. The time of an event is the payload's `updated_at`, else
`X-Shopify-Triggered-At` (see `inbox.occurred_at`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.connectors.registry import Connectors
from app.db import outcomes as outcome_rows
from app.db import shopify_returns, webhook_events
from app.db.tables import Action, Decision, ShopifyReturn, WebhookEvent
from app.services import outcomes
from app.services.actions import Actions
from app.services.webhooks.handlers import Apply, Prepare, UnusableEvent, shopify_gid

RETURN_GID = "gid://shopify/Return/"
STATUSES = frozenset({"requested", "open", "declined", "canceled", "closed"})
# The status a topic brings about, for a payload that does not state it.
STATUS_OF_TOPIC = {
    "returns/request": "requested",
    "returns/approve": "open",
    "returns/decline": "declined",
    "returns/cancel": "canceled",
    "returns/close": "closed",
    "returns/reopen": "open",
}
TOPICS = (
    "returns/approve",
    "returns/decline",
    "returns/cancel",
    "returns/close",
    "returns/reopen",
    "returns/process",
    "returns/update",
)


def handler(actions: Actions, connectors: Connectors) -> Prepare:
    """Keep the Return's status, and settle the pending exchanges it may be the outcome of."""

    async def prepare(event: WebhookEvent, now: datetime) -> Apply:
        payload = event.payload or {}
        return_id = event.subject
        if return_id is None or not return_id.startswith(RETURN_GID):
            raise UnusableEvent("the event names no Return (admin_graphql_api_id or id)")
        order = order_gid(payload)
        if order is None and await actions.has_unnamed_pending_exchanges(event.channel):
            order = await _order_through_return(connectors, event.channel, return_id)
        settled: list[Action] = []
        for action in await actions.pending_exchanges(return_id, order):
            found = await actions.reconcile(action.id)
            settled.append(found or action)
        removed = removals(payload)

        async def apply(session: AsyncSession) -> str:
            newer = await record(session, event, status_of(event.topic, payload))
            status = status_of(event.topic, payload) or "unchanged"
            outcome = [f"return {return_id}: status {status}" if newer else "a later status stands"]
            outcome += removed
            outcome += [f"exchange {action.id} {action.status}" for action in settled]
            # The decisions it concerns learn what became of their return.
            for decision_id in await outcome_rows.decisions_about_return(session, return_id):
                await outcomes.settle(session, decision_id)
            return "; ".join(outcome)

        return apply

    return prepare


async def _order_through_return(connectors: Connectors, channel: str, return_id: str) -> str | None:
    """The Return's order as Shopify holds it; None on a sandbox (it has no actions to settle)."""
    shopify = connectors.shopify(channel)
    if shopify is None:
        return None
    read = await shopify.read_return(return_id)
    return read.order_id if read is not None else None


def removals(payload: dict[str, Any]) -> list[str]:
    """What a `returns/update` took off the Return: `{"removals": [{admin_graphql_api_id, delta}]}`."""
    changes = payload.get("return_line_items")
    if not isinstance(changes, dict):
        return []
    said = []
    for removal in changes.get("removals") or []:
        if not isinstance(removal, dict):
            continue
        line, delta = removal.get("admin_graphql_api_id"), removal.get("delta")
        if isinstance(line, str) and isinstance(delta, int) and not isinstance(delta, bool):
            said.append(f"{delta} unit(s) of return line {line} removed")
    return said


async def record(session: AsyncSession, event: WebhookEvent, status: str | None) -> bool:
    """Keep what the event says about its Return, unless a later event said something already."""
    if event.subject is None or not event.subject.startswith(RETURN_GID):
        return False
    seen = ShopifyReturn(
        return_id=event.subject,
        channel=event.channel,
        status=status,
        last_topic=event.topic,
        changed_at=event.occurred_at,
        webhook_event_id=event.id,
    )
    return await shopify_returns.record(session, seen)


def status_of(topic: str, payload: dict[str, Any]) -> str | None:
    """The payload's own status when it is one Shopify defines, else what the topic implies."""
    stated = payload.get("status")
    if isinstance(stated, str) and stated.lower() in STATUSES:
        return stated.lower()
    return STATUS_OF_TOPIC.get(topic)


async def for_decision(
    session: AsyncSession, decision: Decision, action_answers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The Returns a decision concerns, with their latest status: the one a customer's request
    made it for, and those its actions created."""
    return_ids = {str(a["shopify"]["return_id"]) for a in action_answers if a["shopify"].get("return_id")}
    if decision.webhook_event_id is not None:
        cause = await webhook_events.get(session, decision.webhook_event_id)
        if cause is not None and cause.subject and cause.subject.startswith(RETURN_GID):
            return_ids.add(cause.subject)
    return [
        {
            "return_id": row.return_id,
            "status": row.status,
            "last_event": row.last_topic,
            "changed_at": row.changed_at.isoformat().replace("+00:00", "Z"),
        }
        for row in await shopify_returns.get_many(session, return_ids)
    ]


def order_gid(payload: dict[str, Any]) -> str | None:
    """The Order a return payload names, as a GID: `order { admin_graphql_api_id, id }`, or the
    top-level `order_id` that `returns/cancel`, `close` and `reopen` carry instead."""
    order = payload.get("order")
    named = shopify_gid("Order", order) if isinstance(order, dict) else None
    return named or shopify_gid("Order", payload, "order_id")
