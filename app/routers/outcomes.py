"""What happened after the decisions: stats by group, and Amazon report lines matched to none."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.domain import Money, RequestTime
from app.routers.deps import ReadCaller, SessionDep, problems
from app.services import outcome_stats, outcomes

router = APIRouter(prefix="/v1", tags=["outcomes"])

# Outcomes are for dashboards: the `read` scope only (a `route` key sees no outcome stats).


class OutcomeView(BaseModel):
    status: outcomes.OutcomeStatus = Field(
        description="open, refunded, exchanged, store_credit, kept_returnless, declined or "
        "closed_without_return."
    )
    refunded: Money | None = Field(description="The money refunded, when there was a refund.")
    retained: Money | None = Field(
        default=None, description="The value kept by an exchange or store credit (the service's addition)."
    )
    in_policy: bool | None = Field(description="Amazon's `In policy` flag; null when not reported.")
    a_to_z_claim: bool = Field(description="An A-to-z Guarantee claim was filed (Amazon).")
    resolved_at: str | None = Field(description="When it was resolved (RFC 3339); null while open.")
    source: str = Field(description="shopify or amazon_report.")
    because: str | None = Field(default=None, description="What the status was settled from.")
    updated_at: str | None = Field(default=None, description="When the service last settled it.")


class OutcomeGroupBy(StrEnum):
    channel = "channel"
    policy = "policy"
    rule = "rule"
    queue = "queue"
    reason = "reason"
    day = "day"


class OutcomeGroupStats(BaseModel):
    key: str = Field(
        description="The channel, policy (`id@version`), rule, queue, reason, or UTC day (2026-12-24)."
    )
    decisions: int
    resolved: int = Field(description="Decisions whose outcome is settled (any status but open).")
    retained: int = Field(description="Resolved by an exchange or store credit.")
    refunded: int = Field(description="Resolved by a refund, the item returned.")
    returnless: int = Field(description="Refunded and the item kept (kept_returnless).")
    claims: int = Field(description="Decisions with an A-to-z claim.")
    retention_rate: str = Field(description='retained / resolved, four decimals; "0" when none resolved.')
    claim_rate: str = Field(description="claims / decisions, four decimals.")
    sla_met_rate: str = Field(description="Decisions made before their response deadline / decisions.")
    refunded_amount: Money | None = Field(
        description="Money refunded, when the group's decisions share one currency; else null "
        "(see refunded_amounts)."
    )
    retained_amount: Money | None = Field(description="Value retained, likewise.")
    refunded_amounts: list[Money] = Field(description="Money refunded, per currency.")
    retained_amounts: list[Money] = Field(description="Value retained, per currency.")


class OutcomeStats(BaseModel):
    groups: list[OutcomeGroupStats] = Field(description="Ordered by key.")


@router.get(
    "/stats/outcomes",
    response_model=OutcomeStats,
    operation_id="outcome_stats",
    responses=problems(401, 403, 422),
)
async def get_outcome_stats(
    _caller: ReadCaller,
    session: SessionDep,
    group_by: OutcomeGroupBy,
    since: Annotated[
        RequestTime | None, Query(description="Decisions created at or after this moment (RFC 3339).")
    ] = None,
    until: Annotated[
        RequestTime | None, Query(description="Decisions created strictly before this moment (RFC 3339).")
    ] = None,
) -> JSONResponse:
    """Per group: decisions, their outcomes, retention and claim rates, deadlines met, money moved.

    `rule` groups by each rule named in the decisions' explanations: a decision counts in each of
    its rules. A decision with no outcome known yet counts in `decisions` only.
    """
    groups = await outcome_stats.stats(session, group_by.value, since, until)
    return JSONResponse({"groups": groups})


class UnmatchedLine(BaseModel):
    channel: str
    order_id: str
    sku: str
    rma_id: str
    request_status: str
    resolution: str | None
    outcome: str = Field(description="The outcome the line says.")
    problem: str | None = Field(description="Why it matches no decision.")
    report: str = Field(description="The report id or file it came from.")
    imported_at: str


class UnmatchedLines(BaseModel):
    items: list[UnmatchedLine] = Field(description="Latest imported first.")
    counts: dict[str, int] = Field(description="Unmatched lines per channel, all of them.")


@router.get(
    "/outcomes/unmatched",
    response_model=UnmatchedLines,
    operation_id="unmatched_report_lines",
    responses=problems(401, 403, 422),
)
async def list_unmatched(
    _caller: ReadCaller,
    session: SessionDep,
    channel: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> UnmatchedLines:
    """Lines of Amazon's returns report that match no decision (yet): kept, never dropped. A line is
    matched as soon as a decision about its order and SKU is made."""
    lines, counts = await outcomes.unmatched(session, channel, limit)
    return UnmatchedLines(items=[UnmatchedLine.model_validate(line) for line in lines], counts=counts)
