"""The application: `create_app()` wires routers, error handling and the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app import api_docs, problems
from app.limits import RequestLimits
from app.observability import RequestIdMiddleware, RequestTelemetry, configure_logging
from app.routers import actions, decisions, health, policies, returns, webhooks
from app.runtime import open_runtime
from app.services.actions import Actions
from app.services.idempotency import Idempotency
from app.settings import Settings

log = structlog.get_logger(__name__)

PURGE_EVERY_SECONDS = 600
RECONCILE_EVERY_SECONDS = 60


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings) as runtime:
            app.state.runtime = runtime
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
    # The last added runs first: the request id is bound before the access line and any 413/415.
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        larger={
            webhooks.PATH: max(webhooks.MAX_BODY_BYTES, settings.max_body_bytes),
            policies.PATH: max(policies.MAX_BODY_BYTES, settings.max_body_bytes),
        },
    )
    app.add_middleware(RequestTelemetry)
    app.add_middleware(RequestIdMiddleware)
    problems.install(app)
    api_docs.install(app)
    for router in (
        returns.router,
        decisions.router,
        actions.router,
        policies.router,
        webhooks.router,
        health.router,
    ):
        app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


# What RequestLimits answers for any route that takes a body (see app.limits).
_REFUSED_AT_THE_DOOR = {
    "413": {
        "description": "The body is larger than the limit (MAX_BODY_BYTES).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    },
    "415": {
        "description": "The body is not JSON.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    },
}


def _operation_id(route: APIRoute) -> str:
    return route.operation_id or route.name


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with errors declared as problem+json (what the service really sends)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        for path in schema["paths"].values():
            for method, operation in path.items():
                if method in ("post", "put", "patch"):
                    operation["responses"].update(_REFUSED_AT_THE_DOOR)
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[0] in "45" and "application/json" in content:
                        content["application/problem+json"] = content.pop("application/json")
        app.openapi_schema = schema
    return app.openapi_schema


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
