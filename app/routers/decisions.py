"""Reading decisions back: one by id, pages for dashboards, and counts by group."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from app.action_state import ActionState, ActionStatus
from app.db.decisions import DecisionFilters
from app.domain import Classification, Decision, Money, RequestTime, Resolution
from app.problems import FieldError
from app.routers.deps import Cursor, DecisionToRead, Limit, ReaderCaller, SessionDep, problems
from app.routers.outcomes import OutcomeView
from app.services import decision_pages
from app.services.decision_pages import visible_only_to

router = APIRouter(prefix="/v1", tags=["decisions"])


class ShopifyIds(BaseModel):
    """Ids of what Shopify created for the action, as far as it got."""

    order_id: str | None = Field(default=None, description="The Order GID.")
    refund_id: str | None = Field(default=None, description="The Refund GID (refund).")
    return_id: str | None = Field(default=None, description="The Return GID (exchange).")
    return_name: str | None = Field(default=None, description="The Return's name, e.g. #1001-R1 (exchange).")
    exchange_line_item_ids: list[str] | None = Field(
        default=None, description="The ExchangeLineItem GIDs (exchange)."
    )
    store_credit_transaction_id: str | None = Field(
        default=None, description="The StoreCreditAccountCreditTransaction GID (store credit)."
    )


class ActionError(BaseModel):
    """Why an action failed, or why its answer was lost."""

    code: str = Field(
        description="A problem code (see `ProblemCode`: e.g. `shopify_rejected`, `upstream_timeout`), "
        "or one of the action's own: `not_created`, `no_customer`, `return_declined`, `return_canceled`."
    )
    detail: str
    errors: list[FieldError] | None = Field(default=None, description="Shopify's `userErrors`, if any.")


class ActionSummary(BaseModel):
    """A Shopify action taken on a decision."""

    action_id: str
    decision_id: str
    kind: Resolution = Field(description="What the action does: one of the decision's resolution options.")
    status: ActionStatus
    state: ActionState
    shopify: ShopifyIds
    amount: Money | None = Field(description="The money moved or credited; null for an exchange.")
    created_at: AwareDatetime
    error: ActionError | None = Field(description="Why it failed, or why its answer was lost; else null.")


class ReturnState(StrEnum):
    """A Shopify Return's status, as its webhooks left it."""

    requested = "requested"
    open = "open"
    declined = "declined"
    canceled = "canceled"
    closed = "closed"


class ReturnStatus(BaseModel):
    return_id: str = Field(description="The Shopify Return GID.")
    status: ReturnState | None = Field(description="null if no webhook stated one.")
    last_event: str = Field(description="The latest webhook topic about it, e.g. returns/process.")
    changed_at: AwareDatetime = Field(description="When that happened.")


class DecisionWithActions(Decision):
    actions: list[ActionSummary] = Field(default_factory=list, description="Shopify actions taken on it.")
    shopify_returns: list[ReturnStatus] = Field(
        default_factory=list,
        description="The Shopify Returns it concerns, as their webhooks left them.",
    )
    outcome: OutcomeView | None = Field(
        default=None, description="What happened after the decision; null until something is known."
    )


@router.get(
    "/decisions/{decision_id}",
    response_model=DecisionWithActions,
    operation_id="get_decision",
    response_description="The decision as it was answered, with its actions and Shopify returns.",
    responses=problems(401, 403, 404, 422, 503),
)
async def get_decision(row: DecisionToRead, session: SessionDep) -> JSONResponse:
    """One decision as it was answered, with the actions taken on it, the Returns it concerns and its
    outcome."""
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
    RequestTime | None,
    Query(
        description="Decisions created at or after this moment (RFC 3339).", examples=["2026-12-01T00:00:00Z"]
    ),
]
CreatedBefore = Annotated[
    RequestTime | None,
    Query(
        description="Decisions created strictly before this moment (RFC 3339).",
        examples=["2027-01-01T00:00:00Z"],
    ),
]


@router.get(
    "/decisions",
    response_model=DecisionList,
    operation_id="list_decisions",
    response_description="A page of decisions, newest first, and the cursor of the next.",
    responses=problems(401, 403, 422, 503),
)
async def list_decisions(
    caller: ReaderCaller,
    session: SessionDep,
    channel: Annotated[
        str | None, Query(max_length=64, description="Only this channel's.", examples=["amazon_us"])
    ] = None,
    classification: Annotated[
        Classification | None, Query(description="Only this classification.", examples=["retention_refund"])
    ] = None,
    queue: Annotated[
        str | None, Query(max_length=64, description="Only this queue's.", examples=["amazon-compliance"])
    ] = None,
    eligible: Annotated[
        bool | None, Query(description="Only eligible (true) or ineligible (false) ones.", examples=[True])
    ] = None,
    created_after: CreatedAfter = None,
    created_before: CreatedBefore = None,
    ticket_id: Annotated[
        str | None, Query(max_length=255, description="Only this ticket's.", examples=["T-88213"])
    ] = None,
    order_ref: Annotated[
        str | None,
        Query(max_length=255, description="Only this order's, as the decision shows it.", examples=["#1001"]),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
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
    response_description="The counts per group, ordered by key.",
    responses=problems(401, 403, 422, 503),
)
async def decision_stats(
    caller: ReaderCaller,
    session: SessionDep,
    group_by: Annotated[StatsGroupBy, Query(description="What to count by.", examples=["channel"])],
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
