"""The Python client an integrator generates from openapi/openapi.json, against the service over HTTP.

The client is generated once per session (openapi-python-client, warnings fatal) and calls the app
served by uvicorn on a free loopback port. Every answer, success or problem, must parse into the
client's typed model: a schema the generator dropped or misread shows up here as `parsed` of the
wrong type, or as an error while parsing.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from app.services.api_keys import Scope
from tests.conftest import MakeKey
from tests.polling import poll_until

OPENAPI = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
PACKAGE = "returns_router_client"
AMAZON_MFN = "113-4567890-1234567"
SHOPIFY_ON = "#1001"
AS_OF = datetime(2026, 12, 3, 15, tzinfo=UTC)


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated package; its modules are imported from it as an integrator would."""
    where = tmp_path_factory.mktemp("client")
    tools = Path(sys.executable).parent  # the generator formats its output with the ruff beside it
    generation = subprocess.run(
        [
            str(tools / "openapi-python-client"),
            "generate",
            "--path",
            str(OPENAPI),
            "--output-path",
            str(where / PACKAGE),
            "--meta",
            "none",
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"},
        timeout=300,
    )
    assert generation.returncode == 0, generation.stdout + generation.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))


def module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.fixture(scope="session")
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    """The session's app (its lifespan already running) served on a free port of 127.0.0.1."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False)
    )
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        if serving.done():
            serving.result()  # raises what stopped it
        return server.started

    await poll_until("uvicorn started", started, within=30, every=0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


@pytest.fixture
async def agent(generated: ModuleType, base_url: str, make_key: MakeKey) -> AsyncIterator[Any]:
    """A client with a key that routes, reads and acts."""
    header = await make_key(Scope.route, Scope.read, Scope.act)
    token = header["Authorization"].removeprefix("Bearer ")
    async with generated.AuthenticatedClient(
        base_url=base_url, token=token, raise_on_unexpected_status=True
    ) as client:
        yield client


async def route(agent: Any, order_ref: str, **fields: Any) -> Any:
    models = module("models")
    body = models.ReturnRequest(order_ref=order_ref, as_of=AS_OF, **fields)
    return await module("api.returns.route_return").asyncio_detailed(client=agent, body=body)


async def test_routes_an_amazon_and_a_shopify_sandbox_order(agent: Any) -> None:
    models = module("models")

    amazon = await route(
        agent,
        AMAZON_MFN,
        reason=models.Reason.DAMAGED,
        items=[models.ReturnItem(sku="KET-01", quantity=1)],
        ticket_id="T-88213",
    )
    shopify = await route(agent, SHOPIFY_ON, reason=models.Reason.SIZE_OR_FIT)

    assert amazon.status_code == 201
    assert isinstance(amazon.parsed, models.Decision)
    assert amazon.parsed.platform is models.Platform.AMAZON
    assert amazon.parsed.classification is models.Classification.COMPLIANCE_RETURN
    assert amazon.parsed.ticket_id == "T-88213"
    assert amazon.parsed.policy.resolution_options == [models.Resolution.REFUND]
    assert amazon.parsed.order.total.to_dict() == {"amount": "59.99", "currency": "USD"}
    assert amazon.parsed.created_at.tzinfo is not None
    assert shopify.status_code == 201
    assert isinstance(shopify.parsed, models.Decision)
    assert shopify.parsed.platform is models.Platform.SHOPIFY
    assert shopify.parsed.classification is models.Classification.RETENTION_REFUND
    assert shopify.parsed.policy.owner is models.PolicyOwner.MERCHANT
    assert shopify.parsed.sandbox is True
    assert shopify.headers["x-request-id"]


async def test_reads_a_decision_lists_with_a_cursor_and_counts(agent: Any) -> None:
    models = module("models")
    routed = [(await route(agent, ref)).parsed.decision_id for ref in (AMAZON_MFN, SHOPIFY_ON, AMAZON_MFN)]

    one = await module("api.decisions.get_decision").asyncio_detailed(routed[1], client=agent)
    listing = module("api.decisions.list_decisions")
    first = await listing.asyncio_detailed(client=agent, limit=2)
    second = await listing.asyncio_detailed(client=agent, limit=2, cursor=first.parsed.next_cursor)
    stats = await module("api.decisions.decision_stats").asyncio_detailed(
        client=agent, group_by=models.StatsGroupBy.CHANNEL
    )

    assert isinstance(one.parsed, models.DecisionWithActions)
    assert (one.parsed.decision_id, one.parsed.actions, one.parsed.shopify_returns) == (routed[1], [], [])
    assert isinstance(first.parsed, models.DecisionList)
    assert isinstance(first.parsed.next_cursor, str)
    assert isinstance(second.parsed, models.DecisionList)
    assert second.parsed.next_cursor is None
    listed = [decision.decision_id for page in (first, second) for decision in page.parsed.items]
    assert listed == routed[::-1]  # newest first, each once
    assert isinstance(stats.parsed, models.DecisionStats)
    assert [(group.key, group.count) for group in stats.parsed.groups] == [
        ("amazon_us", 2),
        ("shopify_ca", 1),
    ]


async def test_an_action_the_decision_does_not_allow_is_a_typed_409(agent: Any) -> None:
    models = module("models")
    decision = (await route(agent, AMAZON_MFN)).parsed

    refused = await module("api.actions.refund_decision").asyncio_detailed(
        decision.decision_id, client=agent, body=models.RefundBody(), idempotency_key="refund-1"
    )

    assert refused.status_code == 409
    assert isinstance(refused.parsed, models.Problem)
    assert refused.parsed.code is models.ProblemCode.ACTION_NOT_ALLOWED
    assert refused.parsed.status == 409


async def test_401_404_and_422_are_typed_problems(agent: Any, generated: ModuleType, base_url: str) -> None:
    models = module("models")
    get_decision = module("api.decisions.get_decision")
    async with generated.AuthenticatedClient(base_url=base_url, token="rr_unknown_key") as stranger:
        unknown_key = await get_decision.asyncio_detailed(str(uuid.uuid4()), client=stranger)
    missing = await get_decision.asyncio_detailed(str(uuid.uuid4()), client=agent)
    invalid = await route(agent, "", reason=models.Reason.OTHER)
    bad_cursor = await module("api.decisions.list_decisions").asyncio_detailed(
        client=agent, cursor="nonsense"
    )

    assert unknown_key.status_code == 401
    assert isinstance(unknown_key.parsed, models.Problem)
    assert unknown_key.parsed.code is models.ProblemCode.UNAUTHENTICATED
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Problem)
    assert missing.parsed.code is models.ProblemCode.DECISION_NOT_FOUND
    assert invalid.status_code == 422
    assert isinstance(invalid.parsed, models.Problem)
    assert invalid.parsed.code is models.ProblemCode.VALIDATION_ERROR
    assert [error.loc for error in invalid.parsed.errors] == [["body", "order_ref"]]
    assert isinstance(invalid.parsed.errors[0], models.FieldError)
    assert bad_cursor.status_code == 422
    assert bad_cursor.parsed.code is models.ProblemCode.INVALID_CURSOR
