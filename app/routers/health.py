"""Liveness and readiness."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from app import metrics
from app.errors import DatabaseUnavailable, MigrationsPending
from app.problems import Problem, problem_response
from app.routers.deps import DatabaseDep
from app.services import health

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    database: Literal["ok"] = "ok"
    migration: str | None


@router.get("/healthz", operation_id="healthz")
async def healthz() -> Health:
    """The process is up. Checks nothing else."""
    return Health()


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=Readiness,
    responses={
        503: {
            "model": Problem,
            "description": "The database is unreachable (`database_unavailable`) or not migrated to head "
            "(`migrations_pending`).",
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait, when the database is unreachable.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
        }
    },
)
async def readyz(database: DatabaseDep) -> Response:
    """The database answers and its migrations are at head."""
    try:
        revision = await health.readiness(database)
    except (DatabaseUnavailable, MigrationsPending) as error:
        return problem_response(503, error.code, "Not ready", error.detail, headers=error.headers)
    return JSONResponse(Readiness(migration=revision).model_dump())


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def prometheus_metrics() -> Response:
    """Requests, decisions and upstream calls, in Prometheus text format (every worker's, added up)."""
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
