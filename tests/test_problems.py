"""The one error handler: a failure that is not the database's is a bug (500), never a 503."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

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
