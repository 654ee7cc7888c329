"""Settling a decision's outcome from what the service has seen, and showing it.

One function decides each platform's outcome from all the evidence at once, so it can be run again
whenever anything new arrives (an action, a webhook, a report line, a read-back) and gives the same
answer whatever the order things arrived in:

- Shopify: the decision's own succeeded action first; else the refunds Shopify reported on the
  order since the decision was made for (each refund counts for the latest decision made before it,
  never for two); else the latest status of the Returns it concerns. A refund on a decision whose
  policy required no return is `kept_returnless`.
- Amazon: the lines of the returns report matched to the decision (`amazon_report.py`).

An outcome that arrives before its decision (a refund, a report line) is kept where it arrived;
the decision, when made, is settled from it (`catch_up` finds them).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.action_state import ActionState
from app.db import actions as action_rows
from app.db import outcomes as rows
from app.db import shopify_returns, webhook_events
from app.db.database import Database
from app.db.tables import Action, AmazonReturnRow, Outcome, ShopifyRefund
from app.db.tables import Decision as DecisionRow
from app.domain import Money

log = structlog.get_logger(__name__)

# Shopify's clock and ours differ a little: a refund this much before the decision still counts.
CLOCK_SKEW = timedelta(minutes=5)
RETURN_GID = "gid://shopify/Return/"


class OutcomeStatus(StrEnum):
    open = "open"
    refunded = "refunded"
    exchanged = "exchanged"
    store_credit = "store_credit"
    kept_returnless = "kept_returnless"
    declined = "declined"
    closed_without_return = "closed_without_return"

    @property
    def resolved(self) -> bool:
        return self is not OutcomeStatus.open

    @property
    def retained(self) -> bool:
        return self in (OutcomeStatus.exchanged, OutcomeStatus.store_credit)


# When several pieces of evidence disagree, the one that moved money (or kept the customer) wins.
PRECEDENCE = (
    OutcomeStatus.exchanged,
    OutcomeStatus.store_credit,
    OutcomeStatus.kept_returnless,
    OutcomeStatus.refunded,
    OutcomeStatus.declined,
    OutcomeStatus.closed_without_return,
    OutcomeStatus.open,
)


@dataclass(frozen=True)
class Settled:
    status: OutcomeStatus
    source: str
    refunded: Money | None = None
    retained: Money | None = None
    in_policy: bool | None = None
    a_to_z_claim: bool = False
    resolved_at: datetime | None = None
    because: str = ""


def answer(row: Outcome | None) -> dict[str, Any] | None:
    """A decision's `outcome` as the API shows it: null until something is known."""
    if row is None or row.status is None:
        return None
    return {
        "status": row.status,
        "refunded": _money(row.refunded_amount, row.currency),
        "retained": _money(row.retained_amount, row.currency),
        "in_policy": row.in_policy,
        "a_to_z_claim": row.a_to_z_claim,
        "resolved_at": _time(row.resolved_at),
        "source": row.source,
        "because": (row.detail or {}).get("because"),
        "updated_at": _time(row.updated_at),
    }


async def settle(session: AsyncSession, decision_id: uuid.UUID, now: datetime | None = None) -> str | None:
    """Work a decision's outcome out again from all its evidence and store it; its status, or None."""
    outcome = await rows.get(session, decision_id)
    decision = await session.get(DecisionRow, decision_id)
    if outcome is None or decision is None:
        return None
    if outcome.platform == "amazon":
        settled = amazon_outcome(decision, await rows.report_rows_of(session, decision_id))
    else:
        settled = await _shopify_outcome(session, decision, outcome)
    return await _store(session, outcome, settled, now)


async def settle_amazon(session: AsyncSession, decision_ids: Collection[uuid.UUID], now: datetime) -> int:
    """`settle` for the Amazon decisions a report's lines concern, their evidence read in two
    statements whatever their number; how many there were."""
    lines = await rows.report_rows_by_decision(session, decision_ids)
    settling = await rows.with_decisions(session, decision_ids)
    for outcome, decision in settling:
        await _store(session, outcome, amazon_outcome(decision, lines.get(decision.id, [])), now)
    return len(settling)


async def _store(
    session: AsyncSession, outcome: Outcome, settled: Settled | None, now: datetime | None
) -> str | None:
    decision_id = outcome.decision_id
    detail = dict(outcome.detail or {})
    if settled is None:
        if outcome.status is not None:
            await rows.settle(session, decision_id, {"status": None, "updated_at": now or datetime.now(UTC)})
        return None
    detail["because"] = settled.because
    currency = (settled.refunded or settled.retained or Money.zero(outcome.currency)).currency
    await rows.settle(
        session,
        decision_id,
        {
            "status": settled.status.value,
            "refunded_amount": settled.refunded.amount if settled.refunded else None,
            "retained_amount": settled.retained.amount if settled.retained else None,
            "currency": currency,
            "in_policy": settled.in_policy,
            "a_to_z_claim": settled.a_to_z_claim,
            "resolved_at": settled.resolved_at if settled.status.resolved else None,
            "source": settled.source,
            "detail": detail,
            "updated_at": now or datetime.now(UTC),
        },
    )
    return settled.status.value


async def settle_order(session: AsyncSession, channel: str, order_id: str) -> list[str]:
    """Settle every decision about an order (a refund or a report line concerns them all)."""
    settled = []
    for outcome in await rows.on_order(session, channel, order_id):
        status = await settle(session, outcome.decision_id)
        settled.append(f"{outcome.decision_id}: {status or 'nothing known'}")
    return settled


# --- Shopify ------------------------------------------------------------------------------------


async def _shopify_outcome(session: AsyncSession, decision: DecisionRow, outcome: Outcome) -> Settled | None:
    policy = decision.answer.get("policy", {})
    returnless = policy.get("return_required") is False
    returned_value = Money.model_validate(policy["returned_value"]) if policy.get("returned_value") else None
    taken = await action_rows.for_decision(session, decision.id)
    done = next((a for a in taken if a.status is ActionState.succeeded), None)
    if done is not None:
        return _from_action(done, returnless, returned_value)
    refunds = await _refunds_for(session, decision, outcome)
    if refunds:
        total = _total(refunds)
        return Settled(
            status=OutcomeStatus.kept_returnless if returnless else OutcomeStatus.refunded,
            source="shopify",
            refunded=total,
            resolved_at=max(refund.created_at for refund in refunds),
            because=f"refunded in Shopify: {', '.join(r.refund_id for r in refunds)}",
        )
    latest = await _latest_return(session, decision, taken, outcome)
    if latest is not None:
        return_id, status, exchanged, changed_at = latest
        if exchanged:
            return Settled(
                status=OutcomeStatus.exchanged,
                source="shopify",
                retained=returned_value,
                resolved_at=changed_at,
                because=f"return {return_id} processed with an exchange",
            )
        mapped = _RETURN_STATUS.get(status or "", OutcomeStatus.open)
        return Settled(
            status=mapped, source="shopify", resolved_at=changed_at, because=f"return {return_id} {status}"
        )
    if any(action.status.pending for action in taken):
        return Settled(status=OutcomeStatus.open, source="shopify", because="an action is under way")
    return None


# A Return's status in Shopify, once no money was seen moving.
_RETURN_STATUS = {
    "requested": OutcomeStatus.open,
    "open": OutcomeStatus.open,
    "declined": OutcomeStatus.declined,
    "canceled": OutcomeStatus.closed_without_return,
    "closed": OutcomeStatus.closed_without_return,
}


def _from_action(action: Action, returnless: bool, returned_value: Money | None) -> Settled:
    amount = action.amount
    because = f"{action.kind} action {action.id} succeeded"
    if action.kind == "refund":
        status = OutcomeStatus.kept_returnless if returnless else OutcomeStatus.refunded
        return Settled(
            status=status, source="shopify", refunded=amount, resolved_at=action.updated_at, because=because
        )
    if action.kind == "store_credit":
        return Settled(
            status=OutcomeStatus.store_credit,
            source="shopify",
            retained=amount,
            resolved_at=action.updated_at,
            because=because,
        )
    return Settled(
        status=OutcomeStatus.exchanged,
        source="shopify",
        retained=returned_value,
        resolved_at=action.updated_at,
        because=because,
    )


async def _refunds_for(session: AsyncSession, decision: DecisionRow, outcome: Outcome) -> list[ShopifyRefund]:
    """The refunds on the order that count for this decision: made by none of the service's actions
    (or by this decision's), after this decision was made for, and before any later decision was."""
    refunds = [
        refund
        for refund in await action_rows.refunds_on(session, outcome.order_id)
        if refund.channel == outcome.channel and refund.amount.amount > 0
    ]
    if not refunds:
        return []
    siblings = await rows.on_order(session, outcome.channel, outcome.order_id)
    as_of = await rows.decisions_as_of(session, [s.decision_id for s in siblings])
    own_actions = {a.id for a in await action_rows.for_decision(session, decision.id)}
    mine = []
    for refund in refunds:
        if refund.action_id is not None:
            if refund.action_id in own_actions:
                mine.append(refund)
            continue
        eligible = [d for d, moment in as_of.items() if moment - CLOCK_SKEW <= refund.created_at]
        # The latest decision made before the refund is the one it answered.
        if eligible and max(eligible, key=lambda d: (as_of[d], str(d))) == decision.id:
            mine.append(refund)
    return mine


def _total(refunds: Sequence[ShopifyRefund]) -> Money:
    currency = refunds[0].amount.currency
    total = Money.zero(currency)
    for refund in refunds:
        if refund.amount.currency == currency:
            total = total + refund.amount
    return total.rounded()


async def _latest_return(
    session: AsyncSession, decision: DecisionRow, taken: Sequence[Action], outcome: Outcome
) -> tuple[str, str | None, bool, datetime] | None:
    """(Return GID, status, processed with an exchange, when) of the latest word on the Returns the
    decision concerns: their webhooks, and the last read-back from Shopify."""
    return_ids = {str(a.shopify["return_id"]) for a in taken if a.shopify.get("return_id")}
    if decision.webhook_event_id is not None:
        cause = await webhook_events.get(session, decision.webhook_event_id)
        if cause is not None and cause.subject and cause.subject.startswith(RETURN_GID):
            return_ids.add(cause.subject)
    seen = (outcome.detail or {}).get("seen") or {}
    candidates: list[tuple[datetime, str, str | None, bool]] = []
    for row in await shopify_returns.get_many(session, return_ids):
        candidates.append((row.changed_at, row.return_id, row.status, False))
    checked_at = datetime.fromisoformat(seen["checked_at"]) if seen.get("checked_at") else None
    for found in seen.get("returns", []):
        if checked_at is not None and (not return_ids or found["return_id"] in return_ids):
            candidates.append((checked_at, found["return_id"], found["status"], bool(found.get("exchanged"))))
    if not candidates:
        return None
    changed_at, return_id, status, exchanged = max(candidates, key=lambda c: (c[0], c[3]))
    return return_id, status, exchanged, changed_at


# --- Amazon ------------------------------------------------------------------------------------


def amazon_outcome(decision: DecisionRow, lines: Sequence[AmazonReturnRow]) -> Settled | None:
    """A decision's outcome from the report lines matched to it: open while any line is; else the
    line that moved money first. Refunds add up; one A-to-z claim marks the decision."""
    if not lines:
        return None
    statuses = [OutcomeStatus(line.outcome) for line in lines]
    status = OutcomeStatus.open if OutcomeStatus.open in statuses else min(statuses, key=PRECEDENCE.index)
    refunded = [line for line in lines if line.refunded_amount is not None]
    total = None
    if refunded:
        total = Money(
            amount=sum((line.refunded_amount or Decimal(0) for line in refunded), Decimal(0)),
            currency=refunded[0].currency,
        ).rounded()
    policy = decision.answer.get("policy", {})
    retained = (
        Money.model_validate(policy["returned_value"])
        if status.retained and policy.get("returned_value")
        else None
    )
    flags = [line.in_policy for line in lines]
    in_policy = False if False in flags else (True if flags and all(flags) else None)
    days = [day for line in lines if (day := line.delivered_on or line.requested_on) is not None]
    return Settled(
        status=status,
        source="amazon_report",
        refunded=total,
        retained=retained,
        in_policy=in_policy,
        a_to_z_claim=any(line.a_to_z_claim for line in lines),
        resolved_at=_midnight(max(days)) if days else None,
        because=f"{len(lines)} line(s) of Amazon's returns report: "
        + ", ".join(f"{line.sku} {line.request_status}" for line in lines),
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _money(amount: Decimal | None, currency: str) -> dict[str, str] | None:
    if amount is None:
        return None
    return Money(amount=amount, currency=currency).rounded().model_dump(mode="json")


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


async def settle_after(database: Database, decision_id: uuid.UUID) -> None:
    """Settle a decision after something happened to it outside a webhook (an action succeeded).

    A failure here is logged, not raised: what happened stands, and the outcome is settled again
    by the next webhook or read-back about the order.
    """
    try:
        async with database.transaction() as session:
            await settle(session, decision_id)
    except Exception as error:  # noqa: BLE001 - the action's own answer must not fail for this
        log.warning("outcome_settle_failed", decision_id=str(decision_id), error=type(error).__name__)


async def unmatched(
    session: AsyncSession, channel: str | None, limit: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Amazon report lines that match no decision, latest first, and how many per channel."""
    lines = [
        {
            "channel": line.channel,
            "order_id": line.order_id,
            "sku": line.sku,
            "rma_id": line.rma_id,
            "request_status": line.request_status,
            "resolution": line.resolution,
            "outcome": line.outcome,
            "problem": line.problem,
            "report": line.report,
            "imported_at": _time(line.imported_at),
        }
        for line in await rows.unmatched_rows(session, channel, limit)
    ]
    return lines, await rows.count_unmatched(session)
