"""Schemathesis over the whole committed OpenAPI document, against the app and a real database.

Every operation gets generated requests, valid and invalid, sent with real API keys of every scope.
No answer may be a 5xx, every answer must match the document (status, headers, content type,
schema), and every error must be problem+json. Examples are bounded and derandomised, so a run is
repeatable and short.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.services.api_keys import Scope
from app.settings import Settings
from tests.conftest import MakeKey, running

T = TypeVar("T")
OPENAPI = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
KEY_SCOPES = [{Scope.route}, {Scope.read}, {Scope.act}, {Scope.route, Scope.read, Scope.act}]

schema = schemathesis.openapi.from_path(OPENAPI)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
# A body over the size limit is refused before validation, with 413: a rejection like any other.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]


@schemathesis.check
def errors_are_problem_json(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type == "application/problem+json", f"{response.status_code} answered as {content_type}"
    problem = response.json()
    assert {"type", "title", "status", "detail", "code"} <= problem.keys(), problem
    assert problem["status"] == response.status_code
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    errors_are_problem_json,
]


class Service:
    """The app on an event loop of its own thread, so hypothesis' synchronous tests can call it."""

    def __init__(self, settings: Settings) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._stack = contextlib.AsyncExitStack()
        app = self.run(self._stack.enter_async_context(running(settings)))
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router.test")

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=60)

    def send(self, request: dict[str, Any]) -> httpx.Response:
        body = {"json": request["json"]} if "json" in request else {"content": request.get("data")}
        return self.run(
            self.http.request(
                request["method"],
                request["url"],
                params=request.get("params"),
                headers=request["headers"],
                **body,
            )
        )

    def close(self) -> None:
        self.run(self.http.aclose())
        self.run(self._stack.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(scope="module")
def service(settings: Settings) -> Iterator[Service]:
    started = Service(settings)
    yield started
    started.close()


@pytest.fixture
async def authorizations(make_key: MakeKey) -> Iterator[str]:
    """Keys of every scope, in turn; issued for each test, as every test starts with empty tables."""
    return itertools.cycle(
        [(await make_key(*scopes, name="schemathesis"))["Authorization"] for scopes in KEY_SCOPES]
    )


@schema.parametrize()
@settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_to_the_openapi_document(
    case: schemathesis.Case, service: Service, authorizations: Iterator[str]
) -> None:
    if case.headers is not None and "Authorization" in case.headers or case.operation.path.startswith("/v1/"):
        case.headers = {**(case.headers or {}), "Authorization": next(authorizations)}
    request = case.as_transport_kwargs(base_url="http://router.test")
    response = service.send(request)
    checks = CHECKS
    if any(isinstance(value, list) and len(value) == 1 for value in (case.query or {}).values()):
        # A one-item array is that item on the wire (`topic=false`): not invalid data, whatever the
        # generator meant by it.
        checks = [check for check in CHECKS if check is not negative_data_rejection]
    case.validate_response(response, checks=checks)
