"""The one-click Shopify actions, exactly once: record, commit, send, and read back what was lost.

An action is a row with a state machine: `requested` (recorded, nothing sent) → `submitted` (the
mutation may have gone out) → `succeeded` | `failed`, or `unknown` when the answer was lost. Every
step is committed before the next call to Shopify, and every step is a compare-and-set, so of two
runners of one action only one sends. An `unknown` action is read back from Shopify before
anything is sent again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.action_state import ActionState
from app.connectors.registry import Connectors
from app.connectors.shopify import ShopifyConnector
from app.db import actions as rows
from app.db.database import Database
from app.db.tables import Action, ShopifyRefund
from app.db.tables import Decision as DecisionRow
from app.domain import ActionPlan, Money, Order, PolicyResult, Resolution
from app.errors import ActionNotAllowed
from app.services import action_plan as plans
from app.services.action_exchange import run_exchange
from app.services.action_plan import ActionBody, ExchangeBody, RefundBody, StoreCreditBody
from app.services.action_refund import marked_action, run_refund
from app.services.action_steps import SETTLE, Lost, Step
from app.services.action_store_credit import run_store_credit
from app.services.api_keys import Caller
from app.services.outcomes import settle_after
from app.services.settlement import refund_lines, settle_for_action, settle_for_refund


def answer(action: Action) -> dict[str, Any]:
    """An action as the API shows it; `requested`, `submitted` and `unknown` are all `pending`."""
    return {
        "action_id": str(action.id),
        "decision_id": str(action.decision_id),
        "kind": action.kind,
        "status": action.status.status,
        "state": action.status.value,
        "shopify": dict(action.shopify),
        "amount": action.amount.model_dump(mode="json") if action.amount else None,
        "created_at": action.created_at.isoformat().replace("+00:00", "Z"),
        "error": action.error.model_dump(mode="json", exclude_unset=True) if action.error else None,
    }


class Actions:
    """Taking, running and settling actions: what they need is the database and the connectors."""

    def __init__(self, database: Database, connectors: Connectors) -> None:
        self._database = database
        self._connectors = connectors

    async def take(
        self, decision: DecisionRow, body: ActionBody, caller: Caller, idempotency_key: str
    ) -> Action:
        """Admit, record and run one action on a decision; answers the action as it stands."""
        kind = plans.KIND_OF[type(body)]
        policy = PolicyResult.model_validate(decision.answer["policy"])
        connector = self._connectors.shopify(decision.channel)
        plans.admit(kind, decision.platform, policy, connector is not None)
        assert connector is not None
        order = Order.model_validate(decision.order_snapshot)
        plan = _plan(body, order, decision.request, policy)
        await self._read_back_refunds(connector, decision.channel, order.order_id)
        action = await self._record(decision, kind, order, plan, caller, idempotency_key)
        return await self.run(connector, action)

    async def _read_back_refunds(self, connector: ShopifyConnector, channel: str, order_id: str) -> None:
        """Record the order's refunds the service does not know yet (or not what they covered), so
        that one made by hand in the admin settles its units even before its `refunds/create`
        webhook arrives, or if it never does."""
        seen = await connector.order_refunds(order_id)
        if not seen:
            return
        async with self._database.reading() as session:
            known = await rows.refunds_known(session, [refund.refund_id for refund in seen])
        unknown = [refund for refund in seen if refund.refund_id not in known]
        if not unknown:
            return
        lines = await asyncio.gather(*(connector.refund_lines(refund.refund_id) for refund in unknown))
        async with self._database.transaction() as session:
            for refund, covered in zip(unknown, lines, strict=True):
                await record_shopify_refund(
                    session,
                    channel=channel,
                    order_id=order_id,
                    refund_id=refund.refund_id,
                    amount=refund.amount,
                    created_at=refund.created_at,
                    note=refund.note,
                    lines=covered,
                )

    async def _record(
        self,
        decision: DecisionRow,
        kind: Resolution,
        order: Order,
        plan: ActionPlan,
        caller: Caller,
        idempotency_key: str,
    ) -> Action:
        """The action row and the units it settles, committed before anything is sent; or the same
        request's earlier row. Units another action or a refund settled already: `AlreadySettled`."""
        now = datetime.now(UTC)
        async with self._database.transaction() as session:
            existing = await rows.active_for(session, decision.id)
            if existing is not None:
                if (existing.api_key_id, existing.idempotency_key) == (caller.key_id, idempotency_key):
                    return existing  # the same request again, after it died: resume it
                raise _taken(existing)
            action = Action(
                id=uuid.uuid4(),
                decision_id=decision.id,
                kind=kind.value,
                status=ActionState.requested,
                channel=decision.channel,
                order_id=order.order_id,
                created_at=now,
                updated_at=now,
                submitted_at=None,
                api_key_id=caller.key_id,
                idempotency_key=idempotency_key,
                plan=plan,
                amount=plan.amount,
                shopify={},
                error=None,
            )
            if await rows.insert(session, action):
                # Across decisions: the database keeps one claim on each unit (an error rolls back
                # the action with it).
                await settle_for_action(session, action, order)
                return action
            winner = await rows.active_for(session, decision.id)
        raise _taken(winner)

    async def run(self, connector: ShopifyConnector, action: Action) -> Action:
        """Take the action as far as it can go now. Safe to call again, from anywhere, at any time."""
        if not action.status.pending:
            return action  # settled already (a request retried after its answer was lost): as it stands
        runner: Callable[[Step, ShopifyConnector], Awaitable[None]] = {
            "refund": run_refund,
            "exchange": run_exchange,
            "store_credit": run_store_credit,
        }[action.kind]
        step = Step(self._database, action)
        try:
            await runner(step, connector)
        except Lost:
            pass  # another runner moved the action on: what it did is what stands
        action = await step.reload()
        if action.status is ActionState.succeeded:
            await settle_after(self._database, action.decision_id)
        return action

    async def reconcile(self, action_id: uuid.UUID) -> Action | None:
        """Settle a pending action: read back what Shopify has, then finish it or free the decision."""
        async with self._database.reading() as session:
            action = await rows.get(session, action_id)
        connector = None if action is None else self._connectors.shopify(action.channel)
        if action is None or connector is None:
            return action
        return await self.run(connector, action)

    async def reconcile_stale(self, limit: int = 50) -> int:
        """Reconcile pending actions nobody has touched for `SETTLE` (a crashed request, a lost answer)."""
        async with self._database.reading() as session:
            stale = await rows.pending(session, datetime.now(UTC) - SETTLE, limit)
        for action in stale:
            await self.reconcile(action.id)
        return len(stale)

    async def has_unnamed_pending_exchanges(self, channel: str) -> bool:
        async with self._database.reading() as session:
            return await rows.has_unnamed_pending_exchanges(session, channel)

    async def pending_exchanges(self, return_id: str, order_id: str | None) -> list[Action]:
        async with self._database.reading() as session:
            return list(await rows.pending_exchanges(session, return_id, order_id))


def _plan(body: ActionBody, order: Order, request: dict[str, Any], policy: PolicyResult) -> ActionPlan:
    lines = plans.returned_lines(
        order, request, body.items if not isinstance(body, StoreCreditBody) else None
    )
    if isinstance(body, RefundBody):
        fee = plans.restocking_fee_percent(policy, body.restocking_fee_percent)
        return ActionPlan(lines=lines, fee_percent=fee, notify=body.notify_customer, note=body.note)
    if isinstance(body, ExchangeBody):
        exchange_for = [(plans.variant_gid(i.variant_id), i.quantity) for i in body.exchange_for]
        return ActionPlan(lines=lines, exchange_for=exchange_for)
    amount = plans.store_credit_amount(order, lines, policy.store_credit_bonus_percent, body.amount)
    return ActionPlan(lines=lines, amount=amount)


def _taken(existing: Action | None) -> ActionNotAllowed:
    if existing is None:  # the other action failed between our insert and our read
        return ActionNotAllowed("Another action on this decision was being recorded; try again.")
    return ActionNotAllowed(
        f"The decision already has a {existing.kind} action ({existing.id}, {existing.status}); "
        "a decision takes one action.",
        extra={"action_id": str(existing.id)},
    )


# --- Refunds seen from Shopify ----------------------------------------------------------------


async def record_shopify_refund(
    session: AsyncSession,
    *,
    channel: str,
    order_id: str,
    refund_id: str,
    amount: Money,
    created_at: datetime,
    note: str | None,
    lines: Sequence[tuple[str, int]] | None = None,
) -> bool:
    """A refund seen from Shopify (a `refunds/create` webhook, a read-back of the order's refunds).

    Recorded once, in the caller's transaction, with the units of each line it covered (`lines`;
    None when they are not known). One made by an action (its note carries the action's marker)
    settles that action, whose units are held already; any other, made by hand in the admin,
    settles the units it covered, so no action moves money for them again. False when it was known
    already.
    """
    action_id = marked_action(note)
    action = await rows.get(session, action_id) if action_id else None
    if action is not None and action.status is ActionState.failed:
        # It failed as far as the service knew, and its decision may have taken another action
        # since: the refund stands on the order as one made outside, and blocks refunding again.
        action = None
    now = datetime.now(UTC)
    if action is not None and action.status.may_become(ActionState.succeeded):
        await rows.transition(
            session,
            action,
            ActionState.succeeded,
            updated_at=now,
            shopify={"refund_id": refund_id, "order_id": order_id},
            amount=amount,
            error=None,
        )
    row = ShopifyRefund(
        refund_id=refund_id,
        channel=channel,
        order_id=order_id,
        action_id=action.id if action is not None else None,
        amount=amount,
        created_at=created_at,
        recorded_at=now,
        lines=refund_lines(lines),
    )
    recorded = await rows.record_refund(session, row)
    # Known already, but not what it covered (recorded before lines were): learn them now.
    learned = not recorded and lines is not None and await rows.fill_refund_lines(session, row)
    if (recorded or learned) and row.action_id is None and lines:
        await settle_for_refund(session, row, lines)
    return recorded


async def for_decision(session: AsyncSession, decision_id: uuid.UUID) -> list[dict[str, Any]]:
    return [answer(action) for action in await rows.for_decision(session, decision_id)]
