"""The application: `create_app()` wires routers, error handling and the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app import api_docs, dashboard, problems
from app.limits import RequestLimits, Unverified
from app.observability import RequestTelemetry, configure_logging
from app.routers import actions, decisions, health, outcomes, policies, returns, webhooks
from app.routers.deps import BEARER, BEARER_SCHEME, scopes_of
from app.runtime import open_runtime
from app.services.actions import Actions
from app.services.idempotency import Idempotency
from app.settings import Settings

log = structlog.get_logger(__name__)

PURGE_EVERY_SECONDS = 600
RECONCILE_EVERY_SECONDS = 60


ROUTERS = (
    returns.router,
    decisions.router,
    outcomes.router,
    actions.router,
    policies.router,
    webhooks.router,
    health.router,
)


def create_served_app() -> FastAPI:
    """The app as `python -m app serve` runs it: a process of its own, garbage collection tuned."""
    return create_app(settings=None, tune_gc=True)


def create_app(settings: Settings | None = None, *, tune_gc: bool = False) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings) as runtime:
            app.state.runtime = runtime
            if tune_gc:
                _tune_gc()
            purger = asyncio.create_task(_purge_idempotency_records(runtime.idempotency))
            reconciler = asyncio.create_task(_reconcile_actions(runtime.actions))
            log.info(
                "started",
                channels={k: ("live" if c.live else "sandbox") for k, c in runtime.channels.items()},
            )
            try:
                yield
            finally:
                for task in (purger, reconciler):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app = FastAPI(
        title="Returns Router",
        version="0.1.0",
        summary="Routes return requests: Amazon's platform-owned returns or a store's own policy.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        docs_url=None,  # served by api_docs, without a CDN
        redoc_url=None,
    )
    # The last added runs first: the request id is bound, and the access line written, for any 413/415.
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        larger={
            webhooks.PATH: max(webhooks.MAX_BODY_BYTES, settings.max_body_bytes),
            policies.PATH: max(policies.MAX_BODY_BYTES, settings.max_body_bytes),
        },
        unverified={
            webhooks.PATH: Unverified(webhooks.SIGNATURE_HEADER, settings.webhook_unverified_bytes),
        },
        body_timeout=settings.body_timeout_seconds,
    )
    app.add_middleware(RequestTelemetry)
    problems.install(app)
    api_docs.install(app)
    dashboard.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


DESCRIPTION = """\
Helpdesks send a return request and get a decision back: which policy applies, the reply to send and
the queue that takes it. Dashboards read the decisions; agents take one Shopify action on a decision.

Every `/v1/` call carries `Authorization: Bearer <API key>`; each operation names the scope its key
needs (`route`, `read` or `act`). Every error is `application/problem+json` with a stable `code`
(see `ProblemCode`). Every POST under `/v1/` takes an `Idempotency-Key` (required on the actions): the
same key and body answers the first response again, with `Idempotent-Replayed: true`. Every response
carries `X-Request-ID`, the id its log lines carry too.
"""

TAGS = [
    {"name": "returns", "description": "A return request in, a stored decision out."},
    {"name": "decisions", "description": "Reading decisions back: one by id, pages, and counts."},
    {"name": "actions", "description": "The one-click Shopify actions on a decision."},
    {"name": "policies", "description": "What a draft merchant policy would have decided."},
    {"name": "webhooks", "description": "Shopify's webhooks, and the inbox as operators see it."},
    {"name": "health", "description": "Liveness, readiness and metrics, for the platform that runs it."},
]

SERVERS = [
    {"url": "/", "description": "The service that serves this document."},
    {"url": "http://127.0.0.1:8000", "description": "`python -m app serve` with its defaults."},
]

_REQUEST_ID = {
    "description": "The request's id: the `X-Request-ID` sent, when it is 1-64 letters, digits, `.`, `_` "
    "or `-`, else a new one. Every log line of the request carries it.",
    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._\-]{1,64}$"},
}

HEADERS = {
    "X-Request-ID": {**_REQUEST_ID, "required": True},
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "Idempotent-Replayed": {
        "description": "`true` when the answer replays the first answer to this Idempotency-Key and body.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "WWW-Authenticate": {
        "description": "`Bearer`, when the API key is missing or unknown.",
        "schema": {"type": "string"},
    },
}

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

# What RequestLimits answers for any route that takes a body (see app.limits).
_REFUSED_AT_THE_DOOR = {
    "408": {"description": "The body did not arrive in time (`request_timeout`).", "content": _PROBLEM},
    "413": {"description": "The body is larger than the limit (`body_too_large`).", "content": _PROBLEM},
    "415": {"description": "The body is not JSON (`unsupported_media_type`).", "content": _PROBLEM},
}

# Any other answer, a 500 included: it carries its request id like every other.
_DEFAULT = {
    "description": "Any other problem; a 500 (`internal_error`) is a bug: quote its X-Request-ID.",
    "headers": {"X-Request-ID": _REQUEST_ID},
    "content": _PROBLEM,
}


def _operation_id(route: APIRoute) -> str:
    return route.operation_id or route.name


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, declared as the service behaves: errors as problem+json, the headers every
    answer carries, and the scope each operation needs."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=DESCRIPTION,
            routes=app.routes,
            tags=TAGS,
            servers=SERVERS,
        )
        routes = {
            _operation_id(route): route
            for router in ROUTERS
            for route in router.routes
            if isinstance(route, APIRoute)
        }
        for path in schema["paths"].values():
            for method, operation in path.items():
                _declare(operation, method, routes[operation["operationId"]])
        components = schema["components"]
        components["schemas"].update(problems.openapi_schemas())
        components["headers"] = HEADERS
        components["securitySchemes"] = {BEARER: BEARER_SCHEME}
        app.openapi_schema = schema
    return app.openapi_schema


def _declare(operation: dict[str, Any], method: str, route: APIRoute) -> None:
    responses = operation["responses"]
    if method in ("post", "put", "patch"):
        responses.update(copy.deepcopy(_REFUSED_AT_THE_DOOR))
    for status, response in responses.items():
        content = response.get("content", {})
        if status[0] in "45" and "application/json" in content:
            content[problems.PROBLEM_JSON] = content.pop("application/json")
        response.setdefault("headers", {})["X-Request-ID"] = {"$ref": "#/components/headers/X-Request-ID"}
        if status[0] == "2" and any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])):
            response["headers"]["Idempotent-Replayed"] = {"$ref": "#/components/headers/Idempotent-Replayed"}
    responses["default"] = _DEFAULT
    scopes = scopes_of(route)
    operation["security"] = [{BEARER: [scope.value]} for scope in scopes]
    if scopes:
        wanted = " or ".join(f"`{scope}`" for scope in scopes)
        needs = f"Needs an API key with the {wanted} scope."
        operation["description"] = f"{operation.get('description', '').rstrip()}\n\n{needs}".lstrip()


def _tune_gc() -> None:
    """Leave what start-up built (schemas, templates, policies: most of the heap) out of collections.

    With dozens of requests in flight, their objects outlive the young generation and the collector
    walks the whole heap again and again: measured with `valgrind --tool=callgrind` at 32 concurrent
    routes, that was a fifth of the instructions of a request. Frozen, and collected less eagerly,
    it is a few percent.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(7_000, 10, 10)


async def _purge_idempotency_records(idempotency: Idempotency) -> None:
    """Idempotency records are kept 24 hours (the contract's minimum), then removed."""
    while True:
        await asyncio.sleep(PURGE_EVERY_SECONDS)
        try:
            purged = await idempotency.purge_expired()
        except Exception as error:  # noqa: BLE001 - a failed purge is retried at the next round
            log.warning("idempotency_purge_failed", error=type(error).__name__)
        else:
            if purged:
                log.info("idempotency_records_purged", count=purged)


async def _reconcile_actions(actions: Actions) -> None:
    """Finish actions left pending by a crash or a lost answer; safe on every replica at once."""
    while True:
        await asyncio.sleep(RECONCILE_EVERY_SECONDS)
        try:
            settled = await actions.reconcile_stale()
        except Exception as error:  # noqa: BLE001 - the next round tries again
            log.warning("action_reconciliation_failed", error=type(error).__name__)
        else:
            if settled:
                log.info("actions_reconciled", count=settled)
