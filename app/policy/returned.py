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
    # SKU (or "line <id>") -> units asked beyond the ordered quantity
    beyond_order: dict[str, int] = field(default_factory=dict)


def requested_lines(order: Order, request: ReturnRequest) -> RequestedLines:
    """The lines the request names (every line when it names none), capped at the ordered quantities.

    A line is named by its SKU, or by its line id when it has no SKU (a custom sale has none). A SKU or
    line id that is not on the order is the caller's mistake, not a policy outcome: `ValidationProblem`.
    """
    if request.items is None:
        return RequestedLines(
            [ReturnedLine(line, line.quantity) for line in order.lines if line.quantity > 0]
        )
    skus = {line.sku for line in order.lines if line.sku is not None}
    line_ids = {line.line_id for line in order.lines}
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(request.items):
        if item.sku is not None and item.sku not in skus:
            errors.append(_not_on_order(order, index, "sku", item.sku, f"SKU {item.sku!r}", "unknown_sku"))
        elif item.line_id is not None and item.line_id not in line_ids:
            errors.append(
                _not_on_order(order, index, "line_id", item.line_id, f"line {item.line_id!r}", "unknown_line")
            )
    if errors:
        names = ", ".join(sorted({str(error["input"]) for error in errors}))
        raise ValidationProblem(f"not on order {order.order_ref}: {names}", errors=errors)
    wanted: dict[str, int] = {}  # by the name the request gives a line: its SKU, or its line id
    for item in request.items:
        key = _key(item.sku, item.line_id)
        wanted[key] = wanted.get(key, 0) + item.quantity
    lines: list[ReturnedLine] = []
    for line in order.lines:
        # The same SKU may sit on several lines: fill them in order, never beyond what was ordered.
        taken = 0
        for key in (_key(None, line.line_id), *((_key(line.sku, None),) if line.sku else ())):
            remaining = wanted.get(key, 0)
            share = min(remaining, line.quantity - taken)
            if share > 0:
                wanted[key] = remaining - share
                taken += share
        if taken > 0:
            lines.append(ReturnedLine(line, taken))
    beyond = {key.removeprefix("sku:"): left for key, left in wanted.items() if left > 0}
    return RequestedLines(lines, beyond)


def _key(sku: str | None, line_id: str | None) -> str:
    return f"sku:{sku}" if sku is not None else f"line {line_id}"


def _not_on_order(order: Order, index: int, field: str, value: str, what: str, kind: str) -> dict[str, Any]:
    return {
        "loc": ["body", "items", index, field],
        "msg": f"{what} is not on order {order.order_ref}",
        "type": kind,
        "input": value,
    }


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
