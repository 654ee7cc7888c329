"""`POST /v1/returns/route`: a return request in, a stored decision out."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import Response

from app.db.decisions import Origin
from app.domain import Decision, ReturnRequest
from app.routers.deps import IdempotencyKey, RouteCaller, RoutingDep, problems, replayed
from app.services.idempotency import fingerprint

router = APIRouter(prefix="/v1", tags=["returns"])

PATH = "/v1/returns/route"


@router.post(
    "/returns/route",
    status_code=201,
    response_model=Decision,
    operation_id="route_return",
    response_description="The decision, stored; for a repeated Idempotency-Key and body, the first again.",
    responses=problems(400, 401, 403, 404, 409, 422, 502, 503, 504),
)
async def route_return(
    body: ReturnRequest, routing: RoutingDep, caller: RouteCaller, idempotency_key: IdempotencyKey = None
) -> Response:
    """Resolve the order, classify the return, and answer with the policy, reply template and queue.

    Each call stores a decision. With an `Idempotency-Key`, a repeat of the same body answers the
    first decision again (header `Idempotent-Replayed: true`) instead of storing another.
    """
    routed = await routing.route(
        body,
        Origin(api_key_id=caller.key_id),
        datetime.now(UTC),
        idempotency_key=idempotency_key,
        # Only a keyed request is compared with an earlier one.
        fingerprint=(
            fingerprint("POST", PATH, body.model_dump(mode="json", exclude_unset=True))
            if idempotency_key
            else ""
        ),
    )
    if routed.replay is not None:
        return replayed(routed.replay)
    return Response(routed.answer, status_code=201, media_type="application/json")
