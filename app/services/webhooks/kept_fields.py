"""What of a webhook's payload is stored: the fields the handlers read, by topic, and nothing else.

An allow-list, not a deny-list: a field Shopify adds tomorrow (a buyer's note, an address) is never
stored until a handler reads it and it is listed here. A handler that starts reading a field must add
it, or it reads nothing. Strings are kept whole; a NUL character, which PostgreSQL cannot store and
Shopify never sends in these fields, makes the delivery malformed.
"""

from __future__ import annotations

from typing import Any

from app.errors import MalformedBody
from app.services.action_refund import marked_action, marker

# A shape: True keeps a scalar (text, number, boolean, null); a dict keeps those keys, each with its
# shape; a one-item list keeps a list whose items each have that shape; a tuple of shapes keeps
# whichever fits the value (a key that is a list in one topic and an object in another).
Shape = bool | dict[str, Any] | list[Any] | tuple[Any, ...]

_GIDS = {"id": True, "admin_graphql_api_id": True}
_LINE_ITEM = {**_GIDS}
_CURRENCY = {"presentment_money": {"currency_code": True}}  # a money set, for the currency it is in

# Every `returns/*` topic: `return_requested.py` and `return_status.py`. A `returns/update` states
# its changes to the lines as `{"removals": [...]}` where the others list the lines.
RETURN: Shape = {
    **_GIDS,
    "status": True,
    "created_at": True,
    "updated_at": True,
    "order": {**_GIDS},
    "order_id": True,
    "return_line_items": (
        [
            {
                **_GIDS,
                "quantity": True,
                "return_reason": True,
                "fulfillment_line_item": {**_GIDS, "line_item": _LINE_ITEM},
                "line_item": _LINE_ITEM,
            }
        ],
        {"removals": [{"admin_graphql_api_id": True, "delta": True}]},
    ),
    "exchange_line_items": [{**_GIDS, "quantity": True}],
}

# `refunds/create`: `refund_created.py`. Its `note` is free text: only an action's marker in it is kept.
REFUND: Shape = {
    **_GIDS,
    "order_id": True,
    "created_at": True,
    "transactions": [{"kind": True, "status": True, "amount": True, "currency": True}],
    "refund_line_items": [{"line_item_id": True, "quantity": True, "subtotal_set": _CURRENCY}],
    "total_duties_set": _CURRENCY,
    "refund_shipping_lines": [{"subtotal_amount_set": _CURRENCY}],
}


def shape_of(topic: str) -> Shape | None:
    """What the handlers read of `topic`'s payloads; None for a topic no handler reads."""
    if topic.startswith("returns/"):
        return RETURN
    if topic == "refunds/create":
        return REFUND
    return None


def kept(topic: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The payload as stored: only what the topic's handler reads, or None when it reads nothing."""
    shape = shape_of(topic)
    if shape is None:
        return None
    stored = _keep(payload, shape)
    assert isinstance(stored, dict)  # the payload is an object, and so is every topic's shape
    note = payload.get("note")
    action_id = marked_action(note) if topic == "refunds/create" and isinstance(note, str) else None
    if action_id is not None:  # the refund's note says which action made it; the rest is not kept
        stored["note"] = marker(action_id)
    return stored


def _keep(value: Any, shape: Shape) -> Any:
    if isinstance(shape, tuple):
        fitting = [s for s in shape if isinstance(value, dict | list) and isinstance(s, type(value))]
        return _keep(value, fitting[0] if fitting else shape[0])
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return None
        return {key: _keep(value[key], inner) for key, inner in shape.items() if key in value}
    if isinstance(shape, list):
        if not isinstance(value, list):
            return None
        return [_keep(item, shape[0]) for item in value]
    if isinstance(value, str):
        if "\x00" in value:
            raise MalformedBody("The payload has a NUL character in a field the service reads.")
        return value
    return value if isinstance(value, int | float | bool) or value is None else None
