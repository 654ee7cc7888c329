"""The one error handler: a failure that is not the database's is a bug (500), never a 503."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from fastapi import FastAPI

from app.observability import RequestTelemetry
from app.problems import install


def failing_app(error: Exception) -> FastAPI:
    application = FastAPI()
    install(application)

    @application.get("/fails")
    async def fails() -> None:
        raise error

    return application


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(2, "No such file or directory", "policy.yaml"),
        ConnectionRefusedError(111, "Connection refused"),  # a connector's bug, not the database
        OSError(24, "Too many open files"),
    ],
)
async def test_an_os_error_outside_the_database_is_an_internal_error(error: Exception) -> None:
    transport = httpx.ASGITransport(app=failing_app(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as http:
        response = await http.get("/fails")

    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"


async def test_a_500_carries_its_request_id_and_its_log_lines_name_it(log_lines: io.StringIO) -> None:
    application = failing_app(RuntimeError("a bug"))
    application.add_middleware(RequestTelemetry)  # as app.main adds it
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as http:
        response = await http.get("/fails", headers={"X-Request-ID": "req-7f3a"})
        generated = await http.get("/fails")

    assert (response.status_code, response.json()["code"]) == (500, "internal_error")
    assert response.headers["X-Request-ID"] == "req-7f3a"
    assert generated.status_code == 500
    assert len(generated.headers["X-Request-ID"]) == 32  # one of its own, as for any other answer
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    error, access = (
        next(line for line in lines if line["event"] == event) for event in ("unhandled_error", "request")
    )
    assert (error["event"], error["request_id"], error["error"]) == (
        "unhandled_error",
        "req-7f3a",
        "RuntimeError",
    )
    assert "a bug" in error["exception"]
    assert (access["event"], access["request_id"], access["status"]) == ("request", "req-7f3a", 500)
