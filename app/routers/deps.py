"""Dependencies shared by the routers: the runtime, sessions, and who is calling with which scope."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, Unauthenticated
from app.problems import Problem
from app.runtime import Runtime
from app.services.api_keys import Caller, Scope


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, on every request.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="An API key issued by `python -m app keys create`.")


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def authenticate(runtime: Runtime, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    if credentials is None:
        raise Unauthenticated(
            "Send an API key as `Authorization: Bearer <key>`.", headers={"WWW-Authenticate": "Bearer"}
        )
    # Not in the request's session: the check must not hold a connection while the request waits.
    caller = await runtime.api_keys.authenticate(credentials.credentials)
    if caller is None:
        raise Unauthenticated("The API key is unknown or revoked.", headers={"WWW-Authenticate": "Bearer"})
    return caller


def require_any_scope(*scopes: Scope) -> Callable[..., Awaitable[Caller]]:
    # One dependency that authenticates and checks the scope: each level of dependencies costs FastAPI
    # about 10 µs per request to solve.
    async def check(runtime: RuntimeDep, credentials: BearerDep) -> Caller:
        caller = await authenticate(runtime, credentials)
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
