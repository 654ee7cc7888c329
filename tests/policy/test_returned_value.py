"""Returned value: the named lines, capped at what was ordered, summed exactly and rounded once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from app.policy.returned import requested_lines, value_of

from .builders import amazon_order, line, request_for

ORDER = amazon_order(
    lines=[
        line("KET-01", "59.99", 1),
        line("MUG-02", "12.34", 3),
        line("MUG-02", "12.34", 2),
        line("TEA-03", "4.50", 4),
    ]
)


@pytest.mark.parametrize(
    ("items", "value", "beyond"),
    [
        (None, "139.69", {}),  # every line
        ([{"sku": "MUG-02", "quantity": 2}], "24.68", {}),
        ([{"sku": "MUG-02", "quantity": 4}], "49.36", {}),  # fills the second MUG-02 line
        ([{"sku": "MUG-02", "quantity": 2}, {"sku": "MUG-02", "quantity": 2}], "49.36", {}),  # summed
        ([{"sku": "MUG-02", "quantity": 9}], "61.70", {"MUG-02": 4}),  # capped at the 5 ordered
        ([{"sku": "KET-01", "quantity": 3}, {"sku": "TEA-03"}], "64.49", {"KET-01": 2}),
    ],
)
def test_returned_value(items: list[dict[str, Any]] | None, value: str, beyond: dict[str, int]) -> None:
    requested = requested_lines(ORDER, request_for(ORDER, items=items))

    assert value_of(requested.lines, "USD").amount == Decimal(value)
    assert requested.beyond_order == beyond


def test_rounded_once_at_the_end_not_per_line() -> None:
    order = amazon_order(lines=[line("PIN-01", "0.333", 3), line("PIN-02", "0.333", 1)])

    requested = requested_lines(order, request_for(order))

    assert value_of(requested.lines, "USD").amount == Decimal("1.33")  # 1.332; per line would be 1.32
