"""Dependencies shared by the routers: the services each needs, a session for reads, who is calling
with which scope, and the decision a path names."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.channels import Channel
from app.db.database import Database
from app.db.tables import Decision as DecisionRow
from app.errors import Forbidden, Unauthenticated
from app.policy import PolicyBook
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


async def get_authenticator(request: Request) -> Authenticator:
    return _runtime(request).api_keys


async def get_policy(request: Request) -> PolicyBook:
    return _runtime(request).policy


async def get_channels(request: Request) -> Mapping[str, Channel]:
    return _runtime(request).channels


DatabaseDep = Annotated[Database, Depends(get_database)]
RoutingDep = Annotated[Routing, Depends(get_routing)]
ActionsDep = Annotated[Actions, Depends(get_actions)]
IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]
PolicyDep = Annotated[PolicyBook, Depends(get_policy)]
ChannelsDep = Annotated[Mapping[str, Channel], Depends(get_channels)]


async def get_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """A session for the request's reads; nothing it does is committed."""
    async with database.reading() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="An API key issued by `python -m app keys create`.")


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def authenticate(
    authenticator: Authenticator, credentials: HTTPAuthorizationCredentials | None
) -> Caller:
    if credentials is None:
        raise Unauthenticated(
            "Send an API key as `Authorization: Bearer <key>`.", headers={"WWW-Authenticate": "Bearer"}
        )
    # Not in the request's session: the check must not hold a connection while the request waits.
    caller = await authenticator.authenticate(credentials.credentials)
    if caller is None:
        raise Unauthenticated("The API key is unknown or revoked.", headers={"WWW-Authenticate": "Bearer"})
    return caller


def require_any_scope(*scopes: Scope) -> Callable[..., Awaitable[Caller]]:
    # One dependency that authenticates and checks the scope: each level of dependencies costs FastAPI
    # about 10 µs per request to solve.
    async def check(authenticator: AuthenticatorDep, credentials: BearerDep) -> Caller:
        caller = await authenticate(authenticator, credentials)
        if caller.scopes.isdisjoint(scopes):
            wanted = " or ".join(f"`{scope}`" for scope in scopes)
            raise Forbidden(f"This endpoint needs an API key with the {wanted} scope.")
        return caller

    return check


RouteCaller = Annotated[Caller, Depends(require_any_scope(Scope.route))]
ReaderCaller = Annotated[Caller, Depends(require_any_scope(Scope.read, Scope.route))]
ActorCaller = Annotated[Caller, Depends(require_any_scope(Scope.act))]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7E]{1,255}$",
        description="1-255 visible ASCII characters. The same key and body replays the first answer.",
    ),
]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each error status it can answer (problem+json, see `app.main`)."""
    return {status: {"model": Problem, "description": _DESCRIPTIONS[status]} for status in statuses}


_DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "Missing or unknown API key (webhooks: a missing or bad signature).",
    403: "The API key lacks the scope.",
    404: "Not found.",
    409: "Conflict: channel mismatch, an action the decision does not allow, or a request with the same "
    "Idempotency-Key still running.",
    413: "The body is too large.",
    422: "Invalid request, or an Idempotency-Key reused with a different body.",
    502: "The channel answered badly or refused the service's credentials.",
    503: "The channel or the database is unavailable (see Retry-After).",
    504: "The channel did not answer in time.",
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
