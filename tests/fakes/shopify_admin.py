"""A stand-in for Shopify's Admin GraphQL endpoint, for the tests.

It validates every document against the real 2026-01 schema and executes it with graphql-core, so
an answer has exactly the shape Shopify gives. It serves the sandbox fixture orders, honours
`@idempotent(key:)` on `refundCreate` (a key seen before returns the first refund), and records
every refund, return and credit it performs. Faults are injected per operation: answers before it
runs (5xx, THROTTLED) and timeouts after it has run.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import graphql
import httpx

import app.connectors
from tests.fakes.shopify_schema import admin_schema

ADMIN_URL = "https://fake-shop.myshopify.test/admin/api/2026-10/graphql.json"
TOKEN = "shpat_test_token"
TAX_RATE = Decimal("0.13")  # HST, on every fixture order
FIXTURES = Path(app.connectors.__file__).parent / "fixtures" / "shopify_ca"
CENT = Decimal("0.01")


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": str(amount.quantize(CENT)), "currencyCode": currency}


@dataclass
class FakeShopify:
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    refunds: list[dict[str, Any]] = field(default_factory=list)  # every refund performed
    returns: list[dict[str, Any]] = field(default_factory=list)
    credits: list[dict[str, Any]] = field(default_factory=list)
    idempotency: dict[str, dict[str, Any]] = field(default_factory=dict)
    before: dict[str, list[httpx.Response]] = field(default_factory=dict)  # answers instead of running
    timeouts_after: Counter[str] = field(default_factory=Counter)  # runs, then the answer is lost
    spared: Counter[str] = field(default_factory=Counter)  # calls served normally before faults apply
    latency: float = 0.0
    # Returns customers asked for (returns/request), as `return(id:)` reads them: {order_id, lines}.
    requested: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(900_000))
    _line_of_fulfillment_line: dict[str, str] = field(default_factory=dict)

    @classmethod
    def with_fixtures(cls) -> FakeShopify:
        fake = cls()
        for path in sorted(FIXTURES.glob("*.json")):
            node = json.loads(path.read_text(encoding="utf-8"))
            fake.orders[node["id"]] = node
        return fake

    # --- HTTP ------------------------------------------------------------------------------

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("X-Shopify-Access-Token") != TOKEN:
            return httpx.Response(401, json={"errors": "[API] Invalid API key or access token"})
        body = json.loads(request.content)
        operation = body.get("operationName") or "anonymous"
        self.calls[operation] += 1
        if self.latency:
            await asyncio.sleep(self.latency)  # let concurrent requests interleave
        spared = self.spared[operation] > 0
        self.spared[operation] -= int(spared)
        if self.before.get(operation) and not spared:
            return self.before[operation].pop(0)
        result = self.execute(body["query"], body.get("variables") or {}, operation)
        if self.timeouts_after[operation] > 0 and not spared:
            self.timeouts_after[operation] -= 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(200, json=result)

    def execute(self, query: str, variables: dict[str, Any], operation: str) -> dict[str, Any]:
        schema = admin_schema()
        document = graphql.parse(query)
        errors = graphql.validate(schema, document)
        if errors:
            return {"errors": [{"message": e.message} for e in errors]}
        result = graphql.execute_sync(
            schema, document, root_value=self._root(), variable_values=variables, operation_name=operation
        )
        if result.errors:
            raise AssertionError(f"the fake failed on {operation}: {result.errors}")
        return {
            "data": result.data,
            "extensions": {
                "cost": {
                    "requestedQueryCost": 12,
                    "actualQueryCost": 10,
                    "throttleStatus": {
                        "maximumAvailable": 2000.0,
                        "currentlyAvailable": 1988,
                        "restoreRate": 100.0,
                    },
                }
            },
        }

    @staticmethod
    def throttled(status: int = 200) -> httpx.Response:
        body = {
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {
                "cost": {
                    "requestedQueryCost": 12,
                    "throttleStatus": {
                        "maximumAvailable": 2000.0,
                        "currentlyAvailable": 0,
                        "restoreRate": 100.0,
                    },
                }
            },
        }
        return httpx.Response(status, json=body)

    # --- The schema's root fields ----------------------------------------------------------

    def _root(self) -> dict[str, Any]:
        return {
            "order": lambda _info, id, **_: self._order(id),
            "orders": lambda _info, query, **_: self._orders_named(query),
            "customer": lambda _info, id: self._customer(id),
            "return": lambda _info, id: self._return(id),
            "refund": lambda _info, id: next((r for r in self.refunds if r["id"] == id), None),
            "refundCreate": self._refund_create,
            "returnCreate": lambda _info, returnInput: self._return_create(returnInput),
            "returnProcess": lambda _info, input: self._return_process(input),
            "storeCreditAccountCredit": lambda _info, id, creditInput: self._credit(id, creditInput),
        }

    def _orders_named(self, query: str) -> dict[str, Any]:
        name = query.removeprefix("name:")
        return {"nodes": [self._order(gid) for gid, n in self.orders.items() if n["name"] == name]}

    def _order(self, gid: str) -> dict[str, Any] | None:
        node = self.orders.get(gid)
        if node is None:
            return None
        order = copy.deepcopy(node)
        refunds = [r for r in self.refunds if r["order_id"] == gid]
        order["refunds"] = lambda _info, **_: refunds
        order["returns"] = lambda _info, **_: {"nodes": [r for r in self.returns if r["order_id"] == gid]}
        order["suggestedRefund"] = lambda _info, refundLineItems=None, **_: self._suggested(
            node, refundLineItems
        )
        for number, fulfillment in enumerate(order["fulfillments"]):
            lines = [
                {
                    "id": f"gid://shopify/FulfillmentLineItem/{line['id'].rsplit('/', 1)[1]}{number}",
                    "quantity": line["quantity"],
                    "lineItem": {"id": line["id"]},
                }
                for line in node["lineItems"]["nodes"]
            ]
            fulfillment["fulfillmentLineItems"] = lambda _info, lines=lines, **_: {"nodes": lines}
            self._line_of_fulfillment_line.update({line["id"]: line["lineItem"]["id"] for line in lines})
        return order

    def _return(self, gid: str) -> dict[str, Any] | None:
        """A Return read back: one the service created (`returnCreate`) or one a customer asked for."""
        created = next((r for r in self.returns if r["id"] == gid), None)
        if created is not None:
            lines = [
                {"quantity": line["quantity"], "lineItem": line["lineItem"], "reason": None}
                for line in created["returnLineItems"]["nodes"]
            ]
            order_id = created["order_id"]
        elif gid in self.requested:
            order_id, lines = self.requested[gid]["order_id"], self.requested[gid]["lines"]
        else:
            return None
        return {
            "id": gid,
            "order": {"id": order_id},
            "returnLineItems": lambda _info, **_: {
                "nodes": [
                    {
                        "__typename": "ReturnLineItem",
                        "quantity": line["quantity"],
                        "returnReasonDefinition": {"handle": line["reason"]} if line["reason"] else None,
                        "fulfillmentLineItem": {"lineItem": {"id": line["lineItem"]}},
                    }
                    for line in lines
                ]
            },
        }

    def paid(self, node: dict[str, Any]) -> Decimal:
        return Decimal(node["totalPriceSet"]["presentmentMoney"]["amount"])

    def refunded(self, gid: str) -> Decimal:
        return sum(
            (
                Decimal(r["totalRefundedSet"]["presentmentMoney"]["amount"])
                for r in self.refunds
                if r["order_id"] == gid
            ),
            Decimal(0),
        )

    def _suggested(self, node: dict[str, Any], items: list[dict[str, Any]] | None) -> dict[str, Any]:
        currency = node["presentmentCurrencyCode"]
        prices = {
            line["id"]: Decimal(line["originalUnitPriceSet"]["presentmentMoney"]["amount"])
            for line in node["lineItems"]["nodes"]
        }
        subtotal = sum((prices[i["lineItemId"]] * i["quantity"] for i in items or []), Decimal(0))
        tax = (subtotal * TAX_RATE).quantize(CENT, rounding=ROUND_HALF_UP)
        amount = min(subtotal + tax, self.paid(node) - self.refunded(node["id"]))

        def bag(value: Decimal) -> dict[str, Any]:
            return {"shopMoney": _money(value, currency), "presentmentMoney": _money(value, currency)}

        return {
            "amountSet": bag(amount),
            "totalTaxSet": bag(tax),
            "suggestedTransactions": [
                {
                    "gateway": "shopify_payments",
                    "kind": "SUGGESTED_REFUND",
                    "parentTransaction": {
                        "id": f"gid://shopify/OrderTransaction/{node['id'].rsplit('/', 1)[1]}"
                    },
                    "amountSet": bag(amount),
                }
            ],
        }

    def _refund_create(self, info: graphql.GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        key = _idempotency_key(info)
        if key is not None and key in self.idempotency:
            return self.idempotency[key]  # the first result, nothing refunded again
        node = self.orders[input["orderId"]]
        amount = sum((Decimal(t["amount"]) for t in input.get("transactions") or []), Decimal(0))
        if amount > self.paid(node) - self.refunded(node["id"]):
            return {
                "refund": None,
                "userErrors": [
                    {"field": ["transactions"], "message": "Refund amount exceeds what is refundable"}
                ],
            }
        currency = input.get("currency") or node["presentmentCurrencyCode"]
        refund = {
            "id": f"gid://shopify/Refund/{next(self._ids)}",
            "order_id": node["id"],
            "note": input.get("note"),
            "createdAt": datetime.now(UTC).isoformat(),
            "totalRefundedSet": {
                "shopMoney": _money(amount, currency),
                "presentmentMoney": _money(amount, currency),
            },
            "lines": input.get("refundLineItems"),
            "refundLineItems": _refund_line_items(input.get("refundLineItems") or []),
        }
        self.refunds.append(refund)
        result = {"refund": refund, "userErrors": []}
        if key is not None:
            self.idempotency[key] = result
        return result

    def refund_by_hand(self, order_id: str, lines: list[tuple[str, int]], amount: str) -> dict[str, Any]:
        """A refund made in Shopify's admin, outside the service: no marker in its note."""
        node = self.orders[order_id]
        currency = node["presentmentCurrencyCode"]
        refund_lines = [{"lineItemId": line_id, "quantity": quantity} for line_id, quantity in lines]
        refund = {
            "id": f"gid://shopify/Refund/{next(self._ids)}",
            "order_id": order_id,
            "note": "Refunded at the counter",
            "createdAt": datetime.now(UTC).isoformat(),
            "totalRefundedSet": {
                "shopMoney": _money(Decimal(amount), currency),
                "presentmentMoney": _money(Decimal(amount), currency),
            },
            "lines": refund_lines,
            "refundLineItems": _refund_line_items(refund_lines),
        }
        self.refunds.append(refund)
        return refund

    def _return_create(self, return_input: dict[str, Any]) -> dict[str, Any]:
        created = {
            "id": f"gid://shopify/Return/{next(self._ids)}",
            "order_id": return_input["orderId"],
            "name": f"#R{len(self.returns) + 1}",
            "status": "OPEN",
            "createdAt": datetime.now(UTC).isoformat(),
            "returnLineItems": {
                "nodes": [
                    {
                        "__typename": "ReturnLineItem",
                        "id": f"gid://shopify/ReturnLineItem/{next(self._ids)}",
                        "quantity": line["quantity"],
                        "processedQuantity": 0,
                        "lineItem": self._line_of_fulfillment_line.get(line["fulfillmentLineItemId"]),
                    }
                    for line in return_input["returnLineItems"]
                ]
            },
            "exchangeLineItems": {
                "nodes": [
                    {
                        "id": f"gid://shopify/ExchangeLineItem/{next(self._ids)}",
                        "quantity": line["quantity"],
                        "processedQuantity": 0,
                        "variantId": line["variantId"],
                    }
                    for line in return_input.get("exchangeLineItems") or []
                ]
            },
        }
        self.returns.append(created)
        return {"return": created, "userErrors": []}

    def _return_process(self, process_input: dict[str, Any]) -> dict[str, Any]:
        found = next(r for r in self.returns if r["id"] == process_input["returnId"])
        for key in ("returnLineItems", "exchangeLineItems"):
            wanted = {line["id"]: line["quantity"] for line in process_input.get(key) or []}
            for line in found[key]["nodes"]:
                if line["processedQuantity"] + wanted.get(line["id"], 0) > line["quantity"]:
                    return {
                        "return": None,
                        "userErrors": [{"field": [key], "message": "Already processed", "code": "INVALID"}],
                    }
                line["processedQuantity"] += wanted.get(line["id"], 0)
        found["status"] = "CLOSED"
        return {"return": found, "userErrors": []}

    def _customer(self, gid: str) -> dict[str, Any]:
        credits = [
            {"__typename": "StoreCreditAccountCreditTransaction", **c}
            for c in self.credits
            if c["owner"] == gid
        ]
        account = {
            "id": f"gid://shopify/StoreCreditAccount/{gid.rsplit('/', 1)[1]}",
            "transactions": lambda _info, **_: {"nodes": credits},
        }
        return {"id": gid, "storeCreditAccounts": lambda _info, **_: {"nodes": [account]}}

    def _credit(self, owner: str, credit_input: dict[str, Any]) -> dict[str, Any]:
        amount = credit_input["creditAmount"]
        transaction = {
            "id": f"gid://shopify/StoreCreditAccountCreditTransaction/{next(self._ids)}",
            "owner": owner,
            "createdAt": datetime.now(UTC).isoformat(),
            "amount": {"amount": str(amount["amount"]), "currencyCode": amount["currencyCode"]},
        }
        self.credits.append(transaction)
        return {"storeCreditAccountTransaction": transaction, "userErrors": []}


def _refund_line_items(lines: list[dict[str, Any]]) -> Any:
    nodes = [{"quantity": line["quantity"], "lineItem": {"id": line["lineItemId"]}} for line in lines]
    return lambda _info, **_: {"nodes": nodes, "pageInfo": {"hasNextPage": False}}


def _idempotency_key(info: graphql.GraphQLResolveInfo) -> str | None:
    for directive in info.field_nodes[0].directives or ():
        if directive.name.value == "idempotent":
            value = directive.arguments[0].value
            if isinstance(value, graphql.VariableNode):
                variables = info.variable_values
                coerced = getattr(variables, "coerced", variables)  # graphql-core 3.3, and 3.2
                return str(coerced[value.name.value])
            if isinstance(value, graphql.StringValueNode):
                return value.value
    return None
