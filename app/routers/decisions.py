"""Reading decisions back."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.db import decisions
from app.db.tables import Decision as DecisionRow
from app.domain import Decision
from app.errors import DecisionNotFound
from app.routers.deps import ActorCaller, ReaderCaller, RuntimeDep, SessionDep, problems
from app.services import actions
from app.services.api_keys import Scope

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


class DecisionWithActions(Decision):
    actions: list[ActionSummary] = Field(default_factory=list, description="Shopify actions taken on it.")


async def load_decision(
    decision_id: Annotated[str, Path(description="The decision's id (a UUID).", max_length=64)],
    caller: ReaderCaller,
    session: SessionDep,
) -> DecisionRow:
    """The decision named in the path, if this caller may see it.

    A key with `read` sees every decision; a key with only `route` sees the decisions it made.
    """
    try:
        row = await decisions.get(session, uuid.UUID(decision_id))
    except ValueError:
        row = None  # not a UUID: no such decision, like any other unknown id
    if row is None or (Scope.read not in caller.scopes and row.api_key_id != caller.key_id):
        raise DecisionNotFound(f"No decision {decision_id}.")
    return row


async def load_decision_to_act(
    decision_id: Annotated[str, Path(description="The decision's id (a UUID).", max_length=64)],
    caller: ActorCaller,
    runtime: RuntimeDep,
) -> DecisionRow:
    """The decision named in the path, for a caller with the `act` scope (which acts on any).

    Read in a session of its own: an action holds no connection while it waits on Shopify.
    """
    try:
        decision_uuid = uuid.UUID(decision_id)
    except ValueError:
        raise DecisionNotFound(f"No decision {decision_id}.") from None
    async with runtime.sessions() as session:
        row = await decisions.get(session, decision_uuid)
    if row is None:
        raise DecisionNotFound(f"No decision {decision_id}.")
    return row


@router.get(
    "/decisions/{decision_id}",
    response_model=DecisionWithActions,
    operation_id="get_decision",
    responses=problems(401, 403, 404, 422),
)
async def get_decision(
    row: Annotated[DecisionRow, Depends(load_decision)], session: SessionDep
) -> JSONResponse:
    """One decision as it was answered, with the actions taken on it."""
    return JSONResponse({**row.answer, "actions": await actions.for_decision(session, row.id)})
