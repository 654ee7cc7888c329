"""`POST /v1/policies/simulate`: what a draft merchant policy would have decided. Nothing is written."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.domain import RequestTime
from app.errors import InvalidPolicy
from app.policy import PolicyFileError
from app.policy.policy_file import MAX_CHARS
from app.policy.replay import ReplaySummary
from app.routers.deps import ChannelsDep, DatabaseDep, ReadCaller, RoutingFileDep, problems
from app.services import policy_replay

router = APIRouter(prefix="/v1", tags=["policies"])


PATH = "/v1/policies/simulate"
MAX_POLICY_CHARS = MAX_CHARS
# The body carries a whole draft, up to four bytes a character once encoded, and its envelope.
MAX_BODY_BYTES = 4 * MAX_POLICY_CHARS + 4_096
MAX_DECISIONS = 5_000


class Simulation(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "channel": "shopify_ca",
                    "policy": 'id: shopify-ca-draft\nversion: "2026.12"\n...',
                    "since": "2026-11-01T00:00:00Z",
                    "limit": 1000,
                    "examples": 5,
                }
            ]
        },
    )

    policy: Annotated[str, StringConstraints(min_length=1, max_length=MAX_POLICY_CHARS)] = Field(
        description="The draft merchant policy, as the YAML text of a policy file. Errors name its lines.",
        examples=['id: shopify-ca-draft\nversion: "2026.12"\n...'],
    )
    channel: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")] | None = Field(
        default=None,
        description="The merchant channel; default: the only one configured.",
        examples=["shopify_ca"],
    )
    since: RequestTime | None = Field(
        default=None, description="Only decisions created from then.", examples=["2026-11-01T00:00:00Z"]
    )
    limit: int = Field(
        default=1000, ge=1, le=MAX_DECISIONS, description="At most this many, oldest first.", examples=[1000]
    )
    examples: int = Field(
        default=5, ge=0, le=50, description="How many changed decisions to show.", examples=[5]
    )


@router.post(
    PATH.removeprefix("/v1"),
    response_model=ReplaySummary,
    operation_id="simulate_policy",
    response_description="What would change under the draft, counted, with examples.",
    responses=problems(400, 401, 403, 422, 503),
)
async def simulate_policy(
    body: Simulation,
    channels: ChannelsDep,
    routing_file: RoutingFileDep,
    database: DatabaseDep,
    _caller: ReadCaller,
) -> ReplaySummary:
    """Decide the channel's stored decisions again under a draft policy, and count what would change
    (eligibility, window, options, fee, bonus, returnless, review, queue), with examples.

    The draft is not saved and no decision is written. A draft that is not a valid policy is a 422
    `invalid_policy` whose detail names the line and the problem; so is one built to be costly to
    read (aliases that expand without end, deep nesting, more than 200 rules). A replay that would
    take longer than ten seconds stops there and says `truncated`; a 503 `simulation_unavailable`
    asks to come back when several simulations are already running.
    """
    channel = policy_replay.merchant_channel(channels, body.channel)
    draft = policy_replay.Draft(body.policy, "draft", channel.market, routing_file)
    try:
        return await policy_replay.simulate(
            database, draft, since=body.since, limit=body.limit, examples=body.examples
        )
    except PolicyFileError as error:
        raise InvalidPolicy(
            str(error),
            errors=[{"loc": ["body", "policy"], "msg": str(error), "type": "invalid_policy"}],
            extra={"line": error.line},
        ) from error
