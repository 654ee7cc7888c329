"""A Shopify Return read back by its GID: its order and the lines the customer asked to return.

Return webhooks do not always say either: `returns/decline` and `returns/update` name no order, and a
`returns/request` may list no lines (Shopify's own sample does not). The Return itself does.
Validated against the 2026-01 schema in the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.connectors import payload

# The reason is read from `returnReasonDefinition` (2026-01), whose handles ("defective", "too-tight",
# "arrived-late", ...) replace the deprecated `returnReason` enum.
RETURN_LINES_QUERY = """
query ReturnLines($id: ID!) {
  return(id: $id) {
    id
    order { id }
    returnLineItems(first: 100) {
      nodes {
        quantity
        returnReasonDefinition { handle }
        ... on ReturnLineItem { fulfillmentLineItem { lineItem { id } } }
      }
    }
  }
}
"""


@dataclass(frozen=True)
class RequestedLine:
    line_item_id: str | None  # the order's LineItem GID; None for a line Shopify could not tie to one
    quantity: int
    reason: str  # the reason as the webhook writes it (`defective`, `size_too_small`) or its handle


@dataclass(frozen=True)
class ReturnRead:
    return_id: str
    order_id: str
    lines: list[RequestedLine]


def return_from_shopify(node: Mapping[str, Any]) -> ReturnRead:
    where = "Shopify return"
    return_id = payload.text(node, "id", where)
    where = f"Shopify return {return_id}"
    items = payload.obj(node, "returnLineItems", where)
    lines = []
    for raw in payload.array(items, "nodes", f"{where}: returnLineItems"):
        line = payload.as_object(raw, f"{where}: line")
        fulfillment_line = payload.optional_obj(line, "fulfillmentLineItem", f"{where}: line") or {}
        item = payload.optional_obj(fulfillment_line, "lineItem", f"{where}: line") or {}
        definition = payload.optional_obj(line, "returnReasonDefinition", f"{where}: line") or {}
        handle = payload.optional_text(definition, "handle", f"{where}: line reason")
        lines.append(
            RequestedLine(
                line_item_id=payload.optional_text(item, "id", f"{where}: line item"),
                quantity=payload.count(line, "quantity", f"{where}: line"),
                reason=(handle or "unknown").lower(),
            )
        )
    order = payload.obj(node, "order", where)
    return ReturnRead(return_id=return_id, order_id=payload.text(order, "id", f"{where}: order"), lines=lines)
