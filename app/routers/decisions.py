"""Reading decisions back: one by id, pages for dashboards, and counts by group."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.db.decisions import DecisionFilters
from app.domain import Classification, Decision, RequestTime
from app.routers.deps import DecisionToRead, ReaderCaller, SessionDep, problems
from app.services import decision_pages
from app.services.decision_pages import visible_only_to

router = APIRouter(prefix="/v1", tags=["decisions"])


class ActionSummary(BaseModel):
    action_id: str
    kind: str
    status: str = Field(description="succeeded, pending or failed.")
    state: str = Field(description="requested, submitted, succeeded, failed or unknown.")
    shopify: dict[str, Any] = Field(description="Ids of what Shopify created.")
    amount: dict[str, Any] | None = None
    created_at: str
    error: dict[str, Any] | None = None


class ReturnStatus(BaseModel):
    return_id: str = Field(description="The Shopify Return GID.")
    status: str | None = Field(
        description="requested, open, declined, canceled or closed; null if never stated."
    )
    last_event: str = Field(description="The latest webhook topic about it, e.g. returns/process.")
    changed_at: str = Field(description="When that happened.")


class DecisionWithActions(Decision):
    actions: list[ActionSummary] = Field(default_factory=list, description="Shopify actions taken on it.")
    shopify_returns: list[ReturnStatus] = Field(
        default_factory=list,
        description="The Shopify Returns it concerns, as their webhooks left them.",
    )


@router.get(
    "/decisions/{decision_id}",
    response_model=DecisionWithActions,
    operation_id="get_decision",
    responses=problems(401, 403, 404, 422),
)
async def get_decision(row: DecisionToRead, session: SessionDep) -> JSONResponse:
    """One decision as it was answered, with the actions taken on it and the Returns it concerns."""
    return JSONResponse(await decision_pages.detail(session, row))


class DecisionList(BaseModel):
    items: list[Decision] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class StatsGroupBy(StrEnum):
    channel = "channel"
    queue = "queue"
    classification = "classification"
    reason = "reason"
    day = "day"


class DecisionGroupStats(BaseModel):
    key: str = Field(description="The channel, queue, classification, reason, or UTC day (2026-12-24).")
    count: int
    eligible: int = Field(description="Decisions with `policy.eligible` true.")
    sla_breached: int = Field(
        description="Decisions made at or after their own response deadline (`queue.sla_due_at` <= "
        "`created_at`): the customer had waited past the deadline before the return was routed. "
        "Replies are not recorded by the service, so a deadline missed after the decision is not counted."
    )


class DecisionStats(BaseModel):
    groups: list[DecisionGroupStats] = Field(description="Ordered by key.")


CreatedAfter = Annotated[
    RequestTime | None, Query(description="Decisions created at or after this moment (RFC 3339).")
]
CreatedBefore = Annotated[
    RequestTime | None, Query(description="Decisions created strictly before this moment (RFC 3339).")
]


@router.get(
    "/decisions",
    response_model=DecisionList,
    operation_id="list_decisions",
    responses=problems(401, 403, 422),
)
async def list_decisions(
    caller: ReaderCaller,
    session: SessionDep,
    channel: Annotated[str | None, Query(max_length=64)] = None,
    classification: Classification | None = None,
    queue: Annotated[str | None, Query(max_length=64)] = None,
    eligible: bool | None = None,
    created_after: CreatedAfter = None,
    created_before: CreatedBefore = None,
    ticket_id: Annotated[str | None, Query(max_length=255)] = None,
    order_ref: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the page before.")
    ] = None,
) -> JSONResponse:
    """Decisions newest first, a page at a time.

    The cursor is a position, not an offset: paging while decisions are being made returns each
    decision that existed when paging began exactly once. A key with only the `route` scope sees
    the decisions it made.
    """
    filters = DecisionFilters(
        channel=channel,
        classification=classification.value if classification else None,
        queue=queue,
        eligible=eligible,
        created_after=created_after,
        created_before=created_before,
        ticket_id=ticket_id,
        order_ref=order_ref,
        api_key_id=visible_only_to(caller),
    )
    page = await decision_pages.page(session, filters, cursor, limit)
    return JSONResponse({"items": page.items, "next_cursor": page.next_cursor})


@router.get(
    "/stats/decisions",
    response_model=DecisionStats,
    operation_id="decision_stats",
    responses=problems(401, 403, 422),
)
async def decision_stats(
    caller: ReaderCaller,
    session: SessionDep,
    group_by: StatsGroupBy,
    created_after: CreatedAfter = None,
    created_before: CreatedBefore = None,
) -> DecisionStats:
    """How many decisions, how many eligible and how many SLA-breached, per group.

    `day` groups by the UTC calendar day of `created_at`. A key with only the `route` scope counts
    the decisions it made.
    """
    filters = DecisionFilters(
        created_after=created_after, created_before=created_before, api_key_id=visible_only_to(caller)
    )
    groups = await decision_pages.stats(session, group_by.value, filters)
    return DecisionStats(
        groups=[
            DecisionGroupStats(key=g.key, count=g.count, eligible=g.eligible, sla_breached=g.sla_breached)
            for g in groups
        ]
    )
