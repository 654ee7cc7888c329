"""`POST /v1/returns/route`: a return request in, a stored decision out."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from app import metrics
from app.domain import Decision, ReturnRequest
from app.routers.deps import IdempotencyKey, RouteCaller, RuntimeDep, problems
from app.services import returns
from app.services.idempotency import Replay, fingerprint

router = APIRouter(prefix="/v1", tags=["returns"])

PATH = "/v1/returns/route"


@router.post(
    "/returns/route",
    status_code=201,
    response_model=Decision,
    operation_id="route_return",
    responses=problems(400, 401, 403, 404, 409, 422, 502, 503, 504),
)
async def route_return(
    body: ReturnRequest, runtime: RuntimeDep, caller: RouteCaller, idempotency_key: IdempotencyKey = None
) -> Response:
    """Resolve the order, classify the return, and answer with the policy, reply template and queue.

    Each call stores a decision. With an `Idempotency-Key`, a repeat of the same body answers the
    first decision again (header `Idempotent-Replayed: true`) instead of storing another.
    """
    # Only a keyed request is compared with an earlier one.
    request_fingerprint = (
        fingerprint("POST", PATH, body.model_dump(mode="json", exclude_unset=True)) if idempotency_key else ""
    )
    async with runtime.idempotency.claim(caller.key_id, idempotency_key, request_fingerprint) as claim:
        if claim.replay is not None:
            return replayed(claim.replay)
        order = await returns.resolve_order(runtime.connectors, body)
        decision = returns.decide(runtime.policy, runtime.connectors, order, body, datetime.now(UTC))
        response: Response
        if claim.key is None and runtime.appends is not None:
            # Nothing to save beside the decision: one INSERT, no transaction (the hot path).
            answered = await returns.append(runtime.appends, decision, order, body, caller)
            response = Response(answered, status_code=201, media_type="application/json")
        else:
            async with runtime.sessions.begin() as session:
                answer = await returns.store(session, decision, order, body, caller)
                await claim.complete(session, 201, answer)
            response = JSONResponse(answer, status_code=201)
    metrics.record_decision(decision.channel, decision.classification.value, decision.queue.name)
    return response


def replayed(replay: Replay) -> JSONResponse:
    return JSONResponse(replay.body, status_code=replay.status, headers={"Idempotent-Replayed": "true"})
