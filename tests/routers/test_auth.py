"""API keys: 401 without a known key, 403 without the scope, route keys see their own decisions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import api_keys as key_rows
from app.runtime import Runtime
from app.services import api_keys as api_key_service
from app.services.api_keys import Scope
from tests.conftest import MakeKey, client_of

BODY = {"order_ref": "113-4567890-1234567"}


@pytest.fixture
async def client(fresh_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Every test here goes through the key cache, and some watch it: an app of its own, cache empty."""
    async with client_of(fresh_app) as http:
        yield http


@pytest.fixture
def runtime(fresh_app: FastAPI) -> Runtime:
    runtime: Runtime = fresh_app.state.runtime
    return runtime


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer ",
        "Bearer rr_000000000000_notarealsecret",
        "Basic dXNlcjpwYXNz",
        "Bearer " + "x" * 5000,
    ],
)
async def test_missing_or_unknown_keys_are_401(client: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await client.post("/v1/returns/route", json=BODY, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_key_with_a_wrong_secret_is_401(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    good = (await make_key(Scope.route))["Authorization"]
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    response = await client.post("/v1/returns/route", json=BODY, headers={"Authorization": tampered})
    assert response.status_code == 401


async def test_a_revoked_key_stops_working_once_the_cache_forgets_it(
    client: httpx.AsyncClient,
    make_key: MakeKey,
    sessions: async_sessionmaker[AsyncSession],
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = await make_key(Scope.route)
    assert (await client.post("/v1/returns/route", json=BODY, headers=headers)).status_code == 201
    key_id = headers["Authorization"].removeprefix("Bearer rr_")[:12]
    async with sessions.begin() as session:
        assert await key_rows.revoke(session, key_id, datetime.now(UTC))

    later = time.monotonic() + runtime.settings.api_key_cache_seconds + 0.1
    monkeypatch.setattr(runtime.api_keys, "_clock", lambda: later)
    response = await client.post("/v1/returns/route", json=BODY, headers=headers)
    assert response.status_code == 401
    # and stays refused: a refusal is never remembered as a success
    assert (await client.post("/v1/returns/route", json=BODY, headers=headers)).status_code == 401


async def test_a_verified_key_is_not_looked_up_again_within_the_cache_ttl(
    client: httpx.AsyncClient, make_key: MakeKey, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = await make_key(Scope.route)
    assert (await client.post("/v1/returns/route", json=BODY, headers=headers)).status_code == 201
    lookups = 0
    real_authenticate = api_key_service.authenticate

    async def counting(*args: object) -> object:
        nonlocal lookups
        lookups += 1
        return await real_authenticate(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(api_key_service, "authenticate", counting)
    assert (await client.post("/v1/returns/route", json=BODY, headers=headers)).status_code == 201
    assert lookups == 0
    tampered = {"Authorization": headers["Authorization"][:-1] + "!"}
    assert (await client.post("/v1/returns/route", json=BODY, headers=tampered)).status_code == 401
    assert lookups == 1  # a key that differs by one character is a different key


@pytest.mark.parametrize("scopes", [(Scope.read,), (Scope.act,), (Scope.act, Scope.read)])
async def test_routing_needs_the_route_scope(
    client: httpx.AsyncClient, make_key: MakeKey, scopes: tuple[Scope, ...]
) -> None:
    response = await client.post("/v1/returns/route", json=BODY, headers=await make_key(*scopes))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


async def test_reading_a_decision_needs_read_or_the_key_that_made_it(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    maker = await make_key(Scope.route)
    other_router = await make_key(Scope.route)
    decision_id = (await client.post("/v1/returns/route", json=BODY, headers=maker)).json()["decision_id"]
    path = f"/v1/decisions/{decision_id}"

    assert (await client.get(path, headers=maker)).status_code == 200
    assert (await client.get(path, headers=await make_key(Scope.read))).status_code == 200
    assert (await client.get(path, headers=other_router)).status_code == 404
    assert (await client.get(path, headers=await make_key(Scope.act))).status_code == 403
    assert (await client.get(path)).status_code == 401


@pytest.mark.parametrize("decision_id", ["0b0e8a9e-0000-4000-8000-000000000000", "not-a-uuid", "1"])
async def test_unknown_decisions_are_404(
    client: httpx.AsyncClient, make_key: MakeKey, decision_id: str
) -> None:
    response = await client.get(f"/v1/decisions/{decision_id}", headers=await make_key(Scope.read))
    assert response.status_code == 404
    assert response.json()["code"] == "decision_not_found"
