"""Liveness, readiness, and a database that is not there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.db.migrate import head_revision
from app.services.api_keys import Scope
from app.settings import Settings
from tests.conftest import MakeKey, serving


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_readyz_when_migrated(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "migration": head_revision()}


async def test_a_sane_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "helpdesk-123"})
    replaced = await client.get("/healthz", headers={"X-Request-ID": "bad id\r\nX-Evil: 1"[:10]})
    assert echoed.headers["x-request-id"] == "helpdesk-123"
    assert replaced.headers["x-request-id"] != "bad id\r\nX"


@pytest.fixture
async def unmigrated(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/empty.db")  # type: ignore[call-arg]
    async with serving(settings) as http:
        yield http


@pytest.fixture
async def unreachable() -> AsyncIterator[httpx.AsyncClient]:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    settings = Settings(_env_file=None, database_url="postgresql+asyncpg://postgres@127.0.0.1:9/none")  # type: ignore[call-arg]
    async with serving(settings) as http:
        yield http


async def test_readyz_is_503_until_migrations_run(unmigrated: httpx.AsyncClient) -> None:
    response = await unmigrated.get("/readyz")
    assert response.status_code == 503
    assert response.json()["code"] == "migrations_pending"


async def test_without_a_database_readyz_and_the_api_are_503(
    unreachable: httpx.AsyncClient, make_key: MakeKey
) -> None:
    headers = await make_key(Scope.route)  # a real key, in the suite's database; irrelevant here
    ready = await unreachable.get("/readyz")
    routed = await unreachable.post("/v1/returns/route", json={"order_ref": "#1001"}, headers=headers)
    assert (ready.status_code, ready.json()["code"]) == (503, "database_unavailable")
    assert (routed.status_code, routed.json()["code"]) == (503, "database_unavailable")
    assert routed.headers["content-type"] == "application/problem+json"
    assert (await unreachable.get("/healthz")).status_code == 200
