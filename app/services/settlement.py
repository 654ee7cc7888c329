"""Money once per returned unit: a unit of an order line is refunded, credited or exchanged once,
whichever decisions, keys or replicas ask, and a refund made in Shopify's admin counts as well.

An action claims its units in the transaction that records it, before anything is sent; the units
are freed when it fails. A refund Shopify reports claims the units it covered, whatever else holds
them: the money moved, so no action may move it again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import settled_units as settled
from app.db.tables import Action, SettledUnit, ShopifyRefund
from app.domain import Order, OrderLine
from app.errors import ActionNotAllowed, AlreadySettled

# Each attempt loses only to a claim that committed meanwhile, which the next attempt reads.
ATTEMPTS = 5

Lines = Sequence[tuple[str, int]]  # (LineItem GID, units)


async def settle_for_action(session: AsyncSession, action: Action, order: Order) -> None:
    """Claim the units the action covers; `AlreadySettled` naming their holder when one is taken."""
    unknown = await settled.refunds_of_unknown_lines(session, action.channel, action.order_id)
    if unknown:
        refund = unknown[0]
        raise AlreadySettled(
            f"Order {order.order_ref} was refunded in Shopify ({refund.refund_id}) before the service "
            "recorded which lines each refund covers: check the order in Shopify; nothing was sent.",
            extra={"refund_id": refund.refund_id},
        )
    ordered = {line.line_id: line for line in order.lines}
    now = datetime.now(UTC)
    for _ in range(ATTEMPTS):
        held = _by_line(await settled.on_lines(session, action.channel, action.order_id, ordered))
        over = [
            (ordered[line_id], held[line_id])
            for line_id, quantity in action.plan.lines
            if len(held[line_id]) + quantity > ordered[line_id].quantity
        ]
        if over:
            raise await _settled_already(session, order, over)
        claimed: list[SettledUnit] = []
        for line_id, quantity in action.plan.lines:
            taken = held[line_id]
            claimed += _numbered(
                taken,
                quantity,
                channel=action.channel,
                order_id=action.order_id,
                line_id=line_id,
                action_id=action.id,
                settled_at=now,
            )
        if await settled.insert(session, claimed):
            return
    raise ActionNotAllowed("Other actions were settling the same units at the same time; try again.")


async def settle_for_refund(session: AsyncSession, refund: ShopifyRefund, lines: Lines) -> None:
    """Claim the units a refund made outside the service covered. Never refused: the money moved."""
    now = datetime.now(UTC)
    for _ in range(ATTEMPTS):
        held = _by_line(
            await settled.on_lines(session, refund.channel, refund.order_id, (line for line, _ in lines))
        )
        claimed: list[SettledUnit] = []
        for line_id, quantity in lines:
            claimed += _numbered(
                held[line_id],
                quantity,
                channel=refund.channel,
                order_id=refund.order_id,
                line_id=line_id,
                refund_id=refund.refund_id,
                settled_at=now,
            )
        if await settled.insert(session, claimed):
            return
    raise RuntimeError(f"refund {refund.refund_id}: its units kept conflicting with other claims")


def refund_lines(lines: Lines | None) -> list[dict[str, Any]] | None:
    """What a refund covered, as stored: `[{"line_id": LineItem GID, "quantity": n}]`; None: not known."""
    if lines is None:
        return None
    return [{"line_id": line_id, "quantity": quantity} for line_id, quantity in lines]


def _by_line(settled: Sequence[SettledUnit]) -> defaultdict[str, list[SettledUnit]]:
    held: defaultdict[str, list[SettledUnit]] = defaultdict(list)
    for unit in settled:
        held[unit.line_id].append(unit)
    return held


def _numbered(taken: Sequence[SettledUnit], quantity: int, **holder: Any) -> list[SettledUnit]:
    """`quantity` new units of a line, held by `holder`, at the lowest numbers `taken` leaves free.

    Two claims that read the same units pick the same first number: the primary key keeps one.
    """
    numbers = {unit.unit for unit in taken}
    free = [number for number in range(1, len(numbers) + quantity + 1) if number not in numbers]
    return [SettledUnit(unit=number, **holder) for number in free[:quantity]]


async def _settled_already(
    session: AsyncSession, order: Order, over: Sequence[tuple[OrderLine, Sequence[SettledUnit]]]
) -> AlreadySettled:
    """The refusal, naming for each line what holds its units: the earlier actions and refunds."""
    held_by = {unit.action_id for _, taken in over for unit in taken if unit.action_id is not None}
    found = {action.id: action for action in await settled.actions(session, held_by)}
    extra: dict[str, str] = {}
    lines: list[str] = []
    for line, taken in over:
        names: list[str] = []
        for holder in dict.fromkeys(unit.action_id or unit.refund_id for unit in taken):  # earliest first
            if isinstance(holder, str):
                names.append(f"refund {holder}, made in Shopify")
                extra.setdefault("refund_id", holder)
            elif holder in found:
                action = found[holder]
                names.append(f"the {action.kind} action {action.id} ({action.status.status})")
                extra.setdefault("action_id", str(action.id))
        what = line.sku or line.line_id
        lines.append(f"{len(taken)} of {line.quantity} units of {what} by {' and '.join(names)}")
    return AlreadySettled(
        f"Order {order.order_ref} is refunded, credited or exchanged already: {'; '.join(lines)}. "
        "Nothing was sent.",
        extra=extra,
    )
