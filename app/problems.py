"""One place that turns every error into `application/problem+json` (RFC 9457)."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from http import HTTPStatus
from typing import Annotated, Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, WithJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db.database import described, is_database_error
from app.errors import MalformedBody, ProblemError, ValidationProblem
from app.observability import request_id_of

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://returns-router.dev/problems/"


# Codes answered without a ProblemError: the handler of the unexpected, Starlette's 405, and /readyz.
OTHER_CODES = ("internal_error", "method_not_allowed", "migrations_pending")


def problem_codes() -> list[str]:
    """Every `code` the service answers: each `ProblemError`'s, and the few answered directly."""
    codes = set(OTHER_CODES)
    kinds: list[type[ProblemError]] = [ProblemError]
    while kinds:
        kind = kinds.pop()
        codes.add(kind.code)
        kinds.extend(kind.__subclasses__())
    return sorted(codes)


def openapi_schemas() -> dict[str, Any]:
    """`ProblemCode`, the list of codes that `Problem.code` refers to, for the OpenAPI document."""
    return {
        "ProblemCode": {
            "type": "string",
            "enum": problem_codes(),
            "title": "ProblemCode",
            "description": "The `code` of every problem the service answers. A later version may add "
            "codes: keep a default branch when switching on them.",
        }
    }


class FieldError(BaseModel):
    """Where a field is wrong and what is wrong with it; the input itself is never echoed."""

    loc: list[str | int] = Field(description='The path to the field, e.g. `["body", "items", 0, "sku"]`.')
    msg: str
    type: str = Field(description="What kind of error, e.g. `missing`, `string_too_long`, `unknown_sku`.")


# A known code, or one a later version added: clients switch on the known ones and keep a default.
Code = Annotated[
    str,
    WithJsonSchema(
        {
            "anyOf": [{"$ref": "#/components/schemas/ProblemCode"}, {"type": "string"}],
            "description": "Stable and machine-readable, e.g. `order_not_found`: see `ProblemCode`.",
        }
    ),
]


class Problem(BaseModel):
    """The body of every error (RFC 9457), sent as `application/problem+json`."""

    type: str = Field(description="A URI naming the problem: the code under " + TYPE_BASE + ".")
    title: str = Field(description="A short summary of the problem; the same for every instance of a code.")
    status: int = Field(description="The HTTP status.")
    detail: str = Field(description="What went wrong this time, for people.")
    code: Code
    errors: list[FieldError] | None = Field(default=None, description="Field by field, where it helps.")
    action_id: str | None = Field(
        default=None,
        description="On `action_not_allowed`: the action the decision already has; on `already_settled`: "
        "the earlier action that settled the units.",
    )
    refund_id: str | None = Field(
        default=None, description="On `already_settled`: the refund made in Shopify that settled the units."
    )
    line: int | None = Field(
        default=None, description="On `invalid_policy`: the draft's line of the first problem, if known."
    )
    marketplace_id: str | None = Field(
        default=None,
        description="On `unsupported_marketplace`: the order's Amazon marketplace, when Amazon names it.",
    )
    channels: list[str] | None = Field(
        default=None,
        description="On `ambiguous_order_ref`: the channels whose stores hold an order of that name.",
    )


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


async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    # Starlette's outermost handler calls this, outside RequestTelemetry: the request's id is
    # bound again, for the log line and for the answer (a 500's id is the one needed most).
    request_id = request_id_of(request.scope)
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        if is_database_error(error):
            # Where, and what kind: the driver's message quotes the values the statement carried.
            stack = "".join(traceback.format_tb(error.__traceback__))
            log.error(
                "unhandled_error", error=type(error).__name__, database_error=described(error), stack=stack
            )
        else:
            log.exception("unhandled_error", error=type(error).__name__)
    return problem_response(
        500,
        "internal_error",
        "Internal error",
        "An unexpected error occurred; it was logged.",
        headers={"X-Request-ID": request_id} if request_id else None,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
