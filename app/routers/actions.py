"""The one-click Shopify actions on a decision: refund, exchange, store credit (scope `act`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from app.db.tables import Decision as DecisionRow
from app.routers.decisions import ActionSummary
from app.routers.deps import ActionsDep, ActorCaller, DecisionToAct, IdempotencyDep, problems, replayed
from app.services import actions
from app.services.action_plan import ActionBody, ExchangeBody, RefundBody, StoreCreditBody
from app.services.actions import Actions
from app.services.api_keys import Caller
from app.services.idempotency import Idempotency, fingerprint

router = APIRouter(prefix="/v1", tags=["actions"])

RequiredIdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7E]{1,255}$",
        description="Required: 1-255 visible ASCII characters; the same key and body replays the answer.",
        examples=["T-88213-refund-1"],
    ),
]


class ActionAnswer(ActionSummary):
    """The action as it stands once the request ends: `pending` when Shopify's answer is still due."""


ANSWERED = "The action as it stands; for a repeated Idempotency-Key and body, the first answer again."
RESPONSES = problems(400, 401, 403, 404, 409, 422, 502, 503, 504)


@router.post(
    "/decisions/{decision_id}/actions/refund",
    status_code=201,
    response_model=ActionAnswer,
    response_description=ANSWERED,
    operation_id="refund_decision",
    responses=RESPONSES,
)
async def refund(
    body: RefundBody,
    decision: DecisionToAct,
    taker: ActionsDep,
    idempotency: IdempotencyDep,
    caller: ActorCaller,
    idempotency_key: RequiredIdempotencyKey,
) -> JSONResponse:
    """Refund the decision's lines in Shopify, net of the restocking fee the policy allows, once."""
    return await _act(taker, idempotency, decision, body, caller, idempotency_key, "refund")


@router.post(
    "/decisions/{decision_id}/actions/exchange",
    status_code=201,
    response_model=ActionAnswer,
    response_description=ANSWERED,
    operation_id="exchange_decision",
    responses=RESPONSES,
)
async def exchange(
    body: ExchangeBody,
    decision: DecisionToAct,
    taker: ActionsDep,
    idempotency: IdempotencyDep,
    caller: ActorCaller,
    idempotency_key: RequiredIdempotencyKey,
) -> JSONResponse:
    """Create and process a Shopify return that exchanges the lines for the variants given, once."""
    return await _act(taker, idempotency, decision, body, caller, idempotency_key, "exchange")


@router.post(
    "/decisions/{decision_id}/actions/store-credit",
    status_code=201,
    response_model=ActionAnswer,
    response_description=ANSWERED,
    operation_id="store_credit_decision",
    responses=RESPONSES,
)
async def store_credit(
    body: StoreCreditBody,
    decision: DecisionToAct,
    taker: ActionsDep,
    idempotency: IdempotencyDep,
    caller: ActorCaller,
    idempotency_key: RequiredIdempotencyKey,
) -> JSONResponse:
    """Credit the customer's store credit with the returned value plus the policy's bonus, once."""
    return await _act(taker, idempotency, decision, body, caller, idempotency_key, "store-credit")


async def _act(
    taker: Actions,
    idempotency: Idempotency,
    decision: DecisionRow,
    body: ActionBody,
    caller: Caller,
    key: str,
    kind: str,
) -> JSONResponse:
    path = f"/v1/decisions/{decision.id}/actions/{kind}"
    request_fingerprint = fingerprint("POST", path, body.model_dump(mode="json", exclude_unset=True))
    async with idempotency.claim(caller.key_id, key, request_fingerprint) as claim:
        if claim.replay is not None:
            return replayed(claim.replay)
        answer = actions.answer(await taker.take(decision, body, caller, key))
        await idempotency.complete(claim, 201, answer)
    return JSONResponse(answer, status_code=201)
