"""One place that turns every error into `application/problem+json` (RFC 9457)."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import DatabaseUnavailable, MalformedBody, ProblemError, ValidationProblem

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://returns-router.dev/problems/"


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """The body of every error."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable and machine-readable, e.g. order_not_found.")
    errors: list[FieldError] | None = None


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def render(error: ProblemError) -> JSONResponse:
    return problem_response(
        error.status,
        error.code,
        error.title,
        error.detail,
        errors=error.errors,
        headers=error.headers,
        extra=error.extra,
    )


def _field_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    # Only where and what: the offending input is not echoed back (it may hold buyer data).
    return [
        {
            "loc": [part for part in item.get("loc", ()) if isinstance(part, str | int)],
            "msg": str(item.get("msg", "")),
            "type": str(item.get("type", "")),
        }
        for item in error.errors()
    ]


async def _on_problem(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ProblemError)
    return render(error)


async def _on_validation(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = _field_errors(error)
    if any(item["type"] == "json_invalid" for item in errors):
        return render(MalformedBody("The body could not be parsed as JSON.", errors=errors))
    return render(ValidationProblem("The request has invalid fields; see errors.", errors=errors))


async def _on_http(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and isinstance(error.__cause__, ValueError | RecursionError):
        # FastAPI's bare 400 for a body its JSON parser refused beyond a syntax error: bytes that
        # are not UTF-8 (ValueError), or nesting deeper than the parser goes (RecursionError).
        return render(MalformedBody("The body could not be parsed as JSON (UTF-8)."))
    status = HTTPStatus(error.status_code)
    code = status.phrase.lower().replace(" ", "_").replace("-", "_")
    detail = error.detail if isinstance(error.detail, str) else status.description
    return problem_response(error.status_code, code, status.phrase, detail, headers=error.headers)


async def _on_database(_request: Request, error: Exception) -> JSONResponse:
    log.warning("database_unavailable", error=type(error).__name__)
    return render(
        DatabaseUnavailable("The database cannot be reached; retry shortly.", headers={"Retry-After": "5"})
    )


async def _on_unexpected(_request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled_error", error=type(error).__name__)
    return problem_response(
        500, "internal_error", "Internal error", "An unexpected error occurred; it was logged."
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    for database_error in (OperationalError, InterfaceError, ConnectionRefusedError, OSError):
        app.add_exception_handler(database_error, _on_database)
    app.add_exception_handler(DBAPIError, _on_database_or_bug)
    app.add_exception_handler(Exception, _on_unexpected)


async def _on_database_or_bug(request: Request, error: Exception) -> JSONResponse:
    # A lost connection is the database's trouble; anything else from the driver is ours.
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return await _on_database(request, error)
    return await _on_unexpected(request, error)
