"""Which order lines a request returns, and what they are worth."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.domain import Money, Order, OrderLine, ReturnRequest
from app.errors import ValidationProblem


@dataclass(frozen=True)
class ReturnedLine:
    line: OrderLine
    quantity: int

    @property
    def value(self) -> Money:
        return self.line.unit_price.times(self.quantity)


@dataclass(frozen=True)
class RequestedLines:
    lines: list[ReturnedLine]
    beyond_order: dict[str, int] = field(
        default_factory=dict
    )  # sku -> units asked beyond the ordered quantity


def requested_lines(order: Order, request: ReturnRequest) -> RequestedLines:
    """The lines the request names (every line when it names none), capped at the ordered quantities.

    A SKU that is not on the order is the caller's mistake, not a policy outcome: `ValidationProblem`.
    """
    if request.items is None:
        return RequestedLines(
            [ReturnedLine(line, line.quantity) for line in order.lines if line.quantity > 0]
        )
    known = {line.sku for line in order.lines if line.sku is not None}
    errors: list[dict[str, Any]] = [
        {
            "loc": ["body", "items", index, "sku"],
            "msg": f"SKU {item.sku!r} is not on order {order.order_ref}",
            "type": "unknown_sku",
            "input": item.sku,
        }
        for index, item in enumerate(request.items)
        if item.sku not in known
    ]
    if errors:
        skus = ", ".join(sorted({str(error["input"]) for error in errors}))
        raise ValidationProblem(f"not on order {order.order_ref}: {skus}", errors=errors)
    wanted: dict[str, int] = {}
    for item in request.items:
        wanted[item.sku] = wanted.get(item.sku, 0) + item.quantity
    lines: list[ReturnedLine] = []
    for line in order.lines:
        # The same SKU may sit on several lines: fill them in order, never beyond what was ordered.
        remaining = wanted.get(line.sku, 0) if line.sku is not None else 0
        taken = min(remaining, line.quantity)
        if line.sku is not None and taken > 0:
            wanted[line.sku] = remaining - taken
            lines.append(ReturnedLine(line, taken))
    return RequestedLines(lines, {sku: left for sku, left in wanted.items() if left > 0})


def value_of(lines: Iterable[ReturnedLine], currency: str) -> Money:
    """Exact sum, rounded once here: it is a figure the decision shows and compares with thresholds."""
    total = Money(amount=0, currency=currency)
    for returned in lines:
        total = total + returned.value
    return total.rounded()


def describe(requested: RequestedLines, value: Money) -> str:
    parts = [
        f"{returned.line.sku or returned.line.title} x{returned.quantity}" for returned in requested.lines
    ]
    text = f"{', '.join(parts) or 'no lines'}: {format_money(value)}"
    if requested.beyond_order:
        capped = ", ".join(f"{sku} (+{extra})" for sku, extra in sorted(requested.beyond_order.items()))
        text += f"; capped at the ordered quantity for {capped}"
    return text


def format_money(money: Money) -> str:
    """Money in an explanation: plain and locale-free ("12.00 USD"); replies use Babel instead."""
    return f"{money.amount} {money.currency}"
