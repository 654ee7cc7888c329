"""What became of a Shopify order's return: its refunds and returns, read in one small query.

Small on purpose (a few hundred cost points at most), so the outcome read-back of many orders
stays far inside Shopify's cost limit, beside the agents' own calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.connectors import payload
from app.connectors.shopify import READS, RefundSeen, ShopifyConnector, refund_seen
from app.connectors.shopify_actions import REFUND_FIELDS

ORDER_OUTCOME_QUERY = f"""
query OrderOutcome($id: ID!) {{
  order(id: $id) {{
    id
    refunds(first: 20) {{ {REFUND_FIELDS} }}
    returns(first: 10) {{
      nodes {{ id status exchangeLineItems(first: 10) {{ nodes {{ quantity processedQuantity }} }} }}
    }}
  }}
}}
"""


@dataclass(frozen=True)
class ReturnState:
    return_id: str
    status: str  # lower case, as the webhooks say it: requested, open, declined, canceled, closed
    exchanged: bool  # exchange lines, every one processed


@dataclass(frozen=True)
class OrderOutcome:
    refunds: list[RefundSeen]
    returns: list[ReturnState]


async def order_outcome(shopify: ShopifyConnector, order_id: str) -> OrderOutcome | None:
    """The order's refunds and returns; None when Shopify has no such order any more."""
    data = await shopify.admin.execute("OrderOutcome", ORDER_OUTCOME_QUERY, {"id": order_id}, retry=READS)
    order = payload.optional_obj(data, "order", "Shopify")
    if order is None:
        return None
    where = f"Shopify order {order_id}"
    refunds = [refund_seen(raw, f"{where}: refund") for raw in payload.array(order, "refunds", where)]
    returns = []
    for raw in payload.array(payload.obj(order, "returns", where), "nodes", where):
        node = payload.as_object(raw, where)
        lines = payload.array(payload.obj(node, "exchangeLineItems", where), "nodes", where)
        counts = [
            (payload.count(line, "quantity", where), payload.count(line, "processedQuantity", where))
            for line in (payload.as_object(item, where) for item in lines)
        ]
        returns.append(
            ReturnState(
                return_id=payload.text(node, "id", where),
                status=payload.text(node, "status", where).lower(),
                exchanged=bool(counts) and all(done >= wanted for wanted, done in counts),
            )
        )
    return OrderOutcome(refunds=refunds, returns=returns)
