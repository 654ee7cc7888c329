"""The live Shopify connector: orders from the Admin GraphQL API, and the calls behind the actions.

Each call says how safe it is to repeat: reads are retried; `refundCreate` is retried with its
idempotency key; `returnCreate`, `returnProcess` and `storeCreditAccountCredit` are retried only
after a throttle refused them (they never ran), and otherwise raise for the caller to read back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from app.channels import ShopifyChannel
from app.connectors import payload
from app.connectors import shopify_actions as docs
from app.connectors.retry import RetryPolicy
from app.connectors.shopify_admin import ShopifyAdmin
from app.connectors.shopify_orders import (
    ORDER_BY_ID_QUERY,
    ORDER_BY_NAME_QUERY,
    order_from_shopify,
    order_lookups,
    order_name_search,
)
from app.connectors.shopify_returns import RETURN_LINES_QUERY, ReturnRead, return_from_shopify
from app.domain import Money, Order
from app.errors import OrderNotFound, ShopifyRejected

READS = RetryPolicy()
IDEMPOTENT_WRITES = RetryPolicy(attempts=4)
ONCE_ONLY_WRITES = RetryPolicy(attempts=3)  # retried only when throttled (see ShopifyAdmin.execute)


@dataclass(frozen=True)
class RefundTransaction:
    gateway: str
    parent_id: str | None
    amount: Money  # in the presentment currency


@dataclass(frozen=True)
class SuggestedRefund:
    """What Shopify would refund for the lines, taxes included, in the currency the customer paid."""

    amount: Money
    tax: Money
    transactions: list[RefundTransaction]


@dataclass(frozen=True)
class RefundSeen:
    refund_id: str
    note: str | None
    created_at: datetime
    amount: Money  # presentment


@dataclass(frozen=True)
class ReturnLineSeen:
    line_id: str
    quantity: int
    processed_quantity: int


@dataclass(frozen=True)
class ReturnSeen:
    return_id: str
    name: str
    status: str
    created_at: datetime
    return_lines: list[ReturnLineSeen]
    exchange_lines: list[ReturnLineSeen]

    @property
    def processed(self) -> bool:
        lines = self.return_lines + self.exchange_lines
        return bool(lines) and all(line.processed_quantity >= line.quantity for line in lines)


@dataclass(frozen=True)
class CreditSeen:
    transaction_id: str
    created_at: datetime
    amount: Money


class ShopifyConnector:
    """The `OrderSource` of a live Shopify channel, and its actions."""

    def __init__(self, channel: ShopifyChannel, http: httpx.AsyncClient, admin: ShopifyAdmin | None = None):
        self.channel = channel
        self.admin = admin or ShopifyAdmin(channel, http)

    # --- Orders ------------------------------------------------------------------------

    async def resolve_order(self, order_ref: str) -> Order:
        for lookup in order_lookups(order_ref):
            node = await self._order_node(lookup.by, lookup.value)
            if node is not None:
                return order_from_shopify(node, self.channel)
        raise OrderNotFound(f"Shopify has no order {order_ref.strip()!r} in channel {self.channel.key}.")

    async def _order_node(self, by: str, value: str) -> Mapping[str, Any] | None:
        if by == "id":
            data = await self.admin.execute("OrderById", ORDER_BY_ID_QUERY, {"id": value}, retry=READS)
            return payload.optional_obj(data, "order", "Shopify order")
        data = await self.admin.execute(
            "OrderByName", ORDER_BY_NAME_QUERY, {"query": order_name_search(value)}, retry=READS
        )
        nodes = payload.array(payload.obj(data, "orders", "Shopify orders"), "nodes", "Shopify orders")
        # The search matches by prefix in some shops: only the exact name is this order.
        exact = [n for n in nodes if isinstance(n, Mapping) and n.get("name") == value]
        return exact[0] if exact else None

    async def read_return(self, return_id: str) -> ReturnRead | None:
        """A Return's order and the lines asked for, as Shopify holds them; None for no such Return."""
        data = await self.admin.execute("ReturnLines", RETURN_LINES_QUERY, {"id": return_id}, retry=READS)
        node = payload.optional_obj(data, "return", "Shopify")
        return None if node is None else return_from_shopify(node)

    # --- Refunds -------------------------------------------------------------------------

    async def suggested_refund(self, order_id: str, lines: Sequence[tuple[str, int]]) -> SuggestedRefund:
        data = await self.admin.execute(
            "SuggestedRefund",
            docs.SUGGESTED_REFUND_QUERY,
            {"id": order_id, "refundLineItems": _refund_lines(lines)},
            retry=READS,
        )
        where = f"Shopify suggested refund for {order_id}"
        order = _order(data, order_id)
        suggested = payload.obj(order, "suggestedRefund", where)
        transactions = []
        for raw in payload.array(suggested, "suggestedTransactions", where):
            item = payload.as_object(raw, f"{where}: transaction")
            parent = payload.optional_obj(item, "parentTransaction", f"{where}: transaction")
            transactions.append(
                RefundTransaction(
                    gateway=payload.text(item, "gateway", f"{where}: transaction"),
                    parent_id=payload.text(parent, "id", f"{where}: parent") if parent else None,
                    amount=_presentment(item, "amountSet", where),
                )
            )
        return SuggestedRefund(
            amount=_presentment(suggested, "amountSet", where),
            tax=_presentment(suggested, "totalTaxSet", where),
            transactions=transactions,
        )

    async def create_refund(
        self,
        key: str,
        order_id: str,
        lines: Sequence[tuple[str, int]],
        transactions: Sequence[RefundTransaction],
        *,
        note: str,
        notify: bool,
    ) -> RefundSeen:
        """`refundCreate` under `@idempotent(key:)`: the same key never refunds twice, so it is retried."""
        currencies = {t.amount.currency for t in transactions}
        refund_input: dict[str, Any] = {
            "orderId": order_id,
            "note": note,
            "notify": notify,
            "refundLineItems": _refund_lines(lines, restock=True),
            "transactions": [
                {
                    "orderId": order_id,
                    "gateway": t.gateway,
                    "kind": "REFUND",
                    "amount": str(t.amount.amount),
                    **({"parentId": t.parent_id} if t.parent_id else {}),
                }
                for t in transactions
            ],
        }
        if len(currencies) == 1:
            refund_input["currency"] = currencies.pop()
        data = await self.admin.execute(
            "RefundCreate",
            docs.REFUND_CREATE_MUTATION,
            {"input": refund_input, "key": key},
            retry=IDEMPOTENT_WRITES,
        )
        result = _payload(data, "refundCreate")
        return refund_seen(payload.obj(result, "refund", "refundCreate"), "refundCreate")

    async def order_refunds(self, order_id: str) -> list[RefundSeen]:
        data = await self.admin.execute(
            "OrderRefunds", docs.ORDER_REFUNDS_QUERY, {"id": order_id}, retry=READS
        )
        order = _order(data, order_id)
        return [
            refund_seen(raw, f"Shopify order {order_id}: refund")
            for raw in payload.array(order, "refunds", "")
        ]

    async def refund_lines(self, refund_id: str) -> list[tuple[str, int]] | None:
        """(LineItem GID, units) of each line a refund covered; None when Shopify has no such refund,
        or it covered more lines than one query reads (what it covered is then not known)."""
        data = await self.admin.execute(
            "RefundLines", docs.REFUND_LINES_QUERY, {"id": refund_id}, retry=READS
        )
        where = f"Shopify refund {refund_id}"
        refund = payload.optional_obj(data, "refund", where)
        if refund is None:
            return None
        items = payload.obj(refund, "refundLineItems", where)
        if payload.obj(items, "pageInfo", where).get("hasNextPage") is not False:
            return None
        lines = []
        for item in payload.array(items, "nodes", where):
            line = payload.as_object(item, where)
            quantity = payload.count(line, "quantity", where)
            if quantity:
                lines.append((payload.text(payload.obj(line, "lineItem", where), "id", where), quantity))
        return lines

    # --- Returns with exchange -----------------------------------------------------------

    async def fulfillment_lines(self, order_id: str) -> dict[str, list[tuple[str, int]]]:
        """For each order line item GID, its fulfilment line items (GID, quantity)."""
        data = await self.admin.execute(
            "FulfillmentLines", docs.FULFILLMENT_LINES_QUERY, {"id": order_id}, retry=READS
        )
        where = f"Shopify order {order_id}: fulfilment"
        found: dict[str, list[tuple[str, int]]] = {}
        for raw in payload.array(_order(data, order_id), "fulfillments", where):
            fulfillment = payload.as_object(raw, where)
            if fulfillment.get("status") != "SUCCESS":
                continue
            items = payload.obj(fulfillment, "fulfillmentLineItems", where)
            for item_raw in payload.array(items, "nodes", where):
                item = payload.as_object(item_raw, where)
                line = payload.text(payload.obj(item, "lineItem", where), "id", where)
                found.setdefault(line, []).append(
                    (payload.text(item, "id", where), payload.count(item, "quantity", where))
                )
        return found

    async def create_return(
        self, order_id: str, return_lines: Sequence[tuple[str, int]], exchange_for: Sequence[tuple[str, int]]
    ) -> ReturnSeen:
        """`returnCreate` with exchange lines. Sent once: a lost answer raises, for a read-back."""
        return_input = {
            "orderId": order_id,
            "returnLineItems": [
                {"fulfillmentLineItemId": fli, "quantity": qty, "returnReasonNote": ""}
                for fli, qty in return_lines
            ],
            "exchangeLineItems": [{"variantId": v, "quantity": qty} for v, qty in exchange_for],
        }
        data = await self.admin.execute(
            "ReturnCreate",
            docs.RETURN_CREATE_MUTATION,
            {"input": return_input},
            retry=ONCE_ONLY_WRITES,
            throttled_only=True,
        )
        return _return(payload.obj(_payload(data, "returnCreate"), "return", "returnCreate"), "returnCreate")

    async def process_return(self, created: ReturnSeen) -> ReturnSeen:
        """`returnProcess` of every line of a return: the returned items and the exchange items."""
        process_input = {
            "returnId": created.return_id,
            "returnLineItems": [
                {"id": line.line_id, "quantity": line.quantity} for line in created.return_lines
            ],
            "exchangeLineItems": [
                {"id": line.line_id, "quantity": line.quantity} for line in created.exchange_lines
            ],
            "notifyCustomer": True,
        }
        data = await self.admin.execute(
            "ReturnProcess",
            docs.RETURN_PROCESS_MUTATION,
            {"input": process_input},
            retry=ONCE_ONLY_WRITES,
            throttled_only=True,
        )
        return _return(
            payload.obj(_payload(data, "returnProcess"), "return", "returnProcess"), "returnProcess"
        )

    async def order_returns(self, order_id: str) -> list[ReturnSeen]:
        data = await self.admin.execute(
            "OrderReturns", docs.ORDER_RETURNS_QUERY, {"id": order_id}, retry=READS
        )
        where = f"Shopify order {order_id}: returns"
        returns = payload.obj(_order(data, order_id), "returns", where)
        return [_return(raw, where) for raw in payload.array(returns, "nodes", where)]

    # --- Store credit ---------------------------------------------------------------------

    async def order_customer(self, order_id: str) -> str | None:
        """The customer's GID (an id, nothing personal), or None for a guest checkout."""
        data = await self.admin.execute(
            "OrderCustomer", docs.ORDER_CUSTOMER_QUERY, {"id": order_id}, retry=READS
        )
        customer = payload.optional_obj(_order(data, order_id), "customer", f"Shopify order {order_id}")
        return payload.text(customer, "id", f"Shopify order {order_id}: customer") if customer else None

    async def credit_store_credit(self, customer_id: str, amount: Money) -> CreditSeen:
        """`storeCreditAccountCredit`. Sent once: a lost answer raises, for a read-back."""
        variables = {
            "id": customer_id,
            "creditInput": {
                "creditAmount": {"amount": str(amount.amount), "currencyCode": amount.currency},
                "notify": True,
            },
        }
        data = await self.admin.execute(
            "StoreCreditCredit",
            docs.STORE_CREDIT_MUTATION,
            variables,
            retry=ONCE_ONLY_WRITES,
            throttled_only=True,
        )
        result = _payload(data, "storeCreditAccountCredit")
        raw = payload.obj(result, "storeCreditAccountTransaction", "storeCreditAccountCredit")
        return _credit(raw, "storeCreditAccountCredit")

    async def store_credits(self, customer_id: str) -> list[CreditSeen]:
        data = await self.admin.execute(
            "StoreCredits", docs.STORE_CREDITS_QUERY, {"id": customer_id}, retry=READS
        )
        where = f"Shopify customer {customer_id}: store credit"
        customer = payload.obj(data, "customer", where)
        credits: list[CreditSeen] = []
        for account_raw in payload.array(payload.obj(customer, "storeCreditAccounts", where), "nodes", where):
            account = payload.as_object(account_raw, where)
            for raw in payload.array(payload.obj(account, "transactions", where), "nodes", where):
                if isinstance(raw, Mapping) and raw.get("id"):  # other kinds of transaction come back empty
                    credits.append(_credit(raw, where))
        return credits


def _refund_lines(lines: Sequence[tuple[str, int]], *, restock: bool = False) -> list[dict[str, Any]]:
    # Restocking needs a location the service does not know: the merchant restocks on receipt.
    extra = {"restockType": "NO_RESTOCK"} if restock else {}
    return [{"lineItemId": line, "quantity": qty, **extra} for line, qty in lines]


def _order(data: Mapping[str, Any], order_id: str) -> Mapping[str, Any]:
    order = payload.optional_obj(data, "order", "Shopify")
    if order is None:
        raise OrderNotFound(f"Shopify has no order {order_id}.")
    return order


def _payload(data: Mapping[str, Any], mutation: str) -> Mapping[str, Any]:
    """The mutation's payload; its `userErrors` become `ShopifyRejected`."""
    result = payload.obj(data, mutation, "Shopify")
    user_errors = payload.array(result, "userErrors", mutation, required=False)
    if user_errors:
        errors = [
            {
                "loc": [str(part) for part in (e.get("field") or [])],
                "msg": str(e.get("message", "")),
                "type": str(e.get("code") or "user_error"),
            }
            for e in user_errors
            if isinstance(e, Mapping)
        ]
        messages = "; ".join(str(error["msg"]) for error in errors)
        raise ShopifyRejected(f"Shopify refused {mutation}: {messages}", errors=errors)
    return result


def _presentment(parent: Mapping[str, Any], key: str, where: str) -> Money:
    return payload.money(payload.obj(parent, key, where), "presentmentMoney", f"{where}: {key}")


def refund_seen(raw: Any, where: str) -> RefundSeen:
    node = payload.as_object(raw, where)
    return RefundSeen(
        refund_id=payload.text(node, "id", where),
        note=payload.optional_text(node, "note", where),
        created_at=payload.timestamp(node, "createdAt", where),
        amount=_presentment(node, "totalRefundedSet", where),
    )


def _return(raw: Any, where: str) -> ReturnSeen:
    node = payload.as_object(raw, where)

    def lines(key: str) -> list[ReturnLineSeen]:
        nodes = payload.array(payload.obj(node, key, where), "nodes", f"{where}: {key}")
        return [
            ReturnLineSeen(
                line_id=payload.text(line, "id", where),
                quantity=payload.count(line, "quantity", where),
                processed_quantity=payload.count(line, "processedQuantity", where),
            )
            for line in (payload.as_object(item, where) for item in nodes)
        ]

    return ReturnSeen(
        return_id=payload.text(node, "id", where),
        name=payload.text(node, "name", where),
        status=payload.text(node, "status", where),
        created_at=payload.timestamp(node, "createdAt", where),
        return_lines=lines("returnLineItems"),
        exchange_lines=lines("exchangeLineItems"),
    )


def _credit(raw: Any, where: str) -> CreditSeen:
    node = payload.as_object(raw, where)
    return CreditSeen(
        transaction_id=payload.text(node, "id", where),
        created_at=payload.timestamp(node, "createdAt", where),
        amount=payload.money(node, "amount", where),
    )
