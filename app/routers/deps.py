"""Dependencies shared by the routers: the services each needs, a session for reads, who is calling
with which scope, and the decision a path names."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from app.channels import Channel
from app.db.database import Database
from app.db.tables import Decision as DecisionRow
from app.errors import Forbidden, Unauthenticated
from app.problems import Problem
from app.runtime import Runtime
from app.services import decision_pages
from app.services.actions import Actions
from app.services.api_keys import Authenticator, Caller, Scope
from app.services.idempotency import Idempotency, Replay
from app.services.returns import Routing

# Each is async on purpose: FastAPI runs a plain `def` dependency in a worker thread, on every request.


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_database(request: Request) -> Database:
    return _runtime(request).database


async def get_routing(request: Request) -> Routing:
    return _runtime(request).routing


async def get_actions(request: Request) -> Actions:
    return _runtime(request).actions


async def get_idempotency(request: Request) -> Idempotency:
    return _runtime(request).idempotency


async def get_channels(request: Request) -> Mapping[str, Channel]:
    return _runtime(request).channels


async def get_routing_file(request: Request) -> pathlib.Path:
    """The queue table's file: a worker process that decides drafts reads it for itself."""
    return _runtime(request).settings.routing_file


DatabaseDep = Annotated[Database, Depends(get_database)]
RoutingDep = Annotated[Routing, Depends(get_routing)]
ActionsDep = Annotated[Actions, Depends(get_actions)]
IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
ChannelsDep = Annotated[Mapping[str, Channel], Depends(get_channels)]
RoutingFileDep = Annotated[pathlib.Path, Depends(get_routing_file)]


async def get_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """A session for the request's reads; nothing it does is committed."""
    async with database.reading() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

BEARER = "HTTPBearer"  # the security scheme's name in the OpenAPI document
BEARER_SCHEME = {
    "type": "http",
    "description": "An API key issued by `python -m app keys create`. Each operation lists the scopes "
    "that let a key call it (any one of them will do).",
    "scheme": "bearer",
}


def bearer_token(authorization: str | None) -> str | None:
    """The key in `Authorization: Bearer <key>` (the scheme in any case), else None."""
    scheme, _, token = (authorization or "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


async def authenticate(authenticator: Authenticator, token: str | None) -> Caller:
    if token is None:
        raise Unauthenticated(
            "Send an API key as `Authorization: Bearer <key>`.", headers={"WWW-Authenticate": "Bearer"}
        )
    # Not in the request's session: the check must not hold a connection while the request waits.
    caller = await authenticator.authenticate(token)
    if caller is None:
        raise Unauthenticated("The API key is unknown or revoked.", headers={"WWW-Authenticate": "Bearer"})
    return caller


class ScopeCheck:
    """A dependency that authenticates the caller and checks it holds one of `scopes`.

    One dependency for both: each level of dependencies costs FastAPI about 10 µs per request to
    solve. The OpenAPI document reads `scopes` to declare what each operation needs.
    """

    def __init__(self, *scopes: Scope) -> None:
        self.scopes = scopes

    async def __call__(self, request: Request) -> Caller:
        # The key and the authenticator read here, not through dependencies of their own: each
        # level of dependencies costs every authenticated request (the security scheme is declared
        # in the OpenAPI document by app.main).
        token = bearer_token(request.headers.get("authorization"))
        caller = await authenticate(_runtime(request).api_keys, token)
        if caller.scopes.isdisjoint(self.scopes):
            wanted = " or ".join(f"`{scope}`" for scope in self.scopes)
            raise Forbidden(f"This endpoint needs an API key with the {wanted} scope.")
        return caller


def scopes_of(route: APIRoute) -> tuple[Scope, ...]:
    """The scopes that let a key call `route` (any one of them); none for a public route."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, ScopeCheck):
            return dependant.call.scopes
        pending.extend(dependant.dependencies)
    return ()


def require_any_scope(*scopes: Scope) -> Callable[..., Awaitable[Caller]]:
    return ScopeCheck(*scopes)


RouteCaller = Annotated[Caller, Depends(require_any_scope(Scope.route))]
ReaderCaller = Annotated[Caller, Depends(require_any_scope(Scope.read, Scope.route))]
ActorCaller = Annotated[Caller, Depends(require_any_scope(Scope.act))]
ReadCaller = Annotated[Caller, Depends(require_any_scope(Scope.read))]  # a dashboard's or an operator's

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7E]{1,255}$",
        description="1-255 visible ASCII characters. The same key and body replays the first answer.",
        examples=["T-88213-route-1"],
    ),
]


# The paging of every list: at most `limit` items, and the position to go on from.
Limit = Annotated[int, Query(ge=1, le=200, description="At most this many items.", examples=[50])]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="The `next_cursor` of the page before, as it was given (opaque)."),
]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each error status it can answer (problem+json, see `app.main`)."""
    return {status: {"model": Problem, **_RESPONSES[status]} for status in statuses}


_RESPONSES: dict[int, dict[str, Any]] = {
    400: {"description": "The body is not valid JSON (`malformed_body`)."},
    401: {
        "description": "Missing or unknown API key (`unauthenticated`); on a webhook, a missing or bad "
        "signature (`invalid_signature`).",
        "headers": {"WWW-Authenticate": {"$ref": "#/components/headers/WWW-Authenticate"}},
    },
    403: {"description": "The API key lacks the scope (`forbidden`)."},
    404: {"description": "Not found (`order_not_found` on a route, `decision_not_found`)."},
    409: {
        "description": "Conflict: the order belongs to another channel (`channel_mismatch`), the decision "
        "does not allow the action (`action_not_allowed`), the units it covers were refunded, credited or "
        "exchanged already (`already_settled`), or a request with the same Idempotency-Key is still "
        "running (`idempotency_in_flight`)."
    },
    413: {"description": "The body is larger than the limit (`body_too_large`)."},
    422: {
        "description": "Invalid request, the code saying which, as the operation allows "
        "(`validation_error`, `invalid_cursor`, `unknown_channel`, "
        "`unrecognised_order_ref`, `invalid_policy`, `shopify_rejected`), or an Idempotency-Key reused "
        "with a different body (`idempotency_conflict`)."
    },
    502: {
        "description": "The channel answered badly (`upstream_bad_response`) or refused the service's "
        "credentials (`upstream_auth_failed`)."
    },
    503: {
        "description": "Unavailable for now: the database (`database_unavailable`), on a call to a "
        "channel, the channel (`upstream_unavailable`, `upstream_rate_limited`), or on a webhook, too "
        "many bodies being received at once (`overloaded`). Retry after `Retry-After` seconds.",
        "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"}},
    },
    504: {
        "description": "The channel did not answer in time (`upstream_timeout`).",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait, when the channel named a wait.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
}


DecisionId = Annotated[str, Path(description="The decision's id (a UUID).", max_length=64)]


async def load_decision(decision_id: DecisionId, caller: ReaderCaller, session: SessionDep) -> DecisionRow:
    """The decision named in the path, if this caller may see it.

    A key with `read` sees every decision; a key with only `route` sees the decisions it made.
    """
    return await decision_pages.find(session, decision_id, visible_to=caller)


async def load_decision_to_act(
    decision_id: DecisionId, _caller: ActorCaller, database: DatabaseDep
) -> DecisionRow:
    """The decision named in the path, for a caller with the `act` scope (which acts on any).

    Read in a session of its own: an action holds no connection while it waits on Shopify.
    """
    async with database.reading() as session:
        return await decision_pages.find(session, decision_id)


DecisionToRead = Annotated[DecisionRow, Depends(load_decision)]
DecisionToAct = Annotated[DecisionRow, Depends(load_decision_to_act)]


def replayed(replay: Replay) -> JSONResponse:
    """The first answer to an Idempotency-Key, again."""
    return JSONResponse(replay.body, status_code=replay.status, headers={"Idempotent-Replayed": "true"})
