"""The suite runs against a real database: PostgreSQL by default, SQLite when TEST_DATABASE_URL says so.

One database per test session, migrated with Alembic (never `create_all`), emptied after each test.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import respx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.db.migrate import upgrade
from app.main import create_app
from app.runtime import Runtime
from app.services import api_keys
from app.services.api_keys import Scope
from app.settings import Settings
from tests.fakes.shopify_admin import ADMIN_URL, TOKEN, FakeShopify
from tests.sqs_server import queue_url, sqs_endpoint  # noqa: F401 - fixtures: a local SQS server
from tests.webhook_builders import PREVIOUS_WEBHOOK_SECRET, WEBHOOK_SECRET

DEFAULT_TEST_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TABLES = (
    "outcome_imports",
    "amazon_return_rows",
    "outcomes",
    "rule_sets",
    "amazon_notifications_kept",
    "amazon_mirror_orders",
    "amazon_mirror_sync",
    "shopify_returns",
    "shopify_refunds",
    "actions",
    "idempotency_records",
    "decisions",
    "webhook_events",
    "api_keys",
)  # children first

MakeKey = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A new, migrated database for this test session."""
    base = os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE)
    url = make_url(base)
    if url.get_backend_name() == "sqlite":
        path = Path(tmp_path_factory.mktemp("db")) / "returns-router.db"
        rendered = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(upgrade, rendered)
        yield rendered
        return
    name = f"returns_router_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    rendered = url.set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade, rendered)
        yield rendered
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # httpx's own transport: the one respx intercepts (see app.runtime.open_http_client).
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database_url,
        log_format="json",
        log_level="WARNING",
        # Two secrets, as during a rotation; the sandbox channel has no shop domain.
        channel_shopify_ca_webhook_secrets=[SecretStr(WEBHOOK_SECRET), SecretStr(PREVIOUS_WEBHOOK_SECRET)],
        http_transport="httpx",
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture(scope="session")
def sessions(runtime: Runtime) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(runtime.database.engine, expire_on_commit=False)


@pytest.fixture
async def clean_database(runtime: Runtime) -> AsyncIterator[None]:
    """Every test that writes starts from empty tables and leaves them empty."""
    yield
    async with runtime.database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
        else:
            for table in TABLES:
                await connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def client(app: FastAPI, clean_database: None) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as http:
        yield http


@pytest.fixture
def make_key(sessions: async_sessionmaker[AsyncSession], clean_database: None) -> MakeKey:
    """Issue an API key with the given scopes; returns the Authorization header for it."""

    async def make(*scopes: Scope, name: str = "test helpdesk") -> dict[str, str]:
        async with sessions.begin() as session:
            _row, key = await api_keys.issue(session, name, set(scopes))
        return {"Authorization": f"Bearer {key}"}

    return make


# --- A live Shopify channel pointed at the fake Admin endpoint ---------------------------------


@pytest.fixture(scope="session")
async def live_app(settings: Settings) -> AsyncIterator[FastAPI]:
    live = settings.model_copy(
        update={
            "channel_shopify_ca_admin_url": ADMIN_URL,
            "channel_shopify_ca_access_token": SecretStr(TOKEN),
        }
    )
    application = create_app(live)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def live_runtime(live_app: FastAPI) -> Runtime:
    runtime: Runtime = live_app.state.runtime
    return runtime


@pytest.fixture
def shopify() -> Iterator[FakeShopify]:
    fake = FakeShopify.with_fixtures()
    with respx.mock(assert_all_called=False) as mock:
        mock.post(ADMIN_URL).mock(side_effect=fake.handle)
        yield fake


@pytest.fixture
async def live(live_app: FastAPI, clean_database: None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=live_app), base_url="http://router.test"
    ) as http:
        yield http


@pytest.fixture
async def agent(make_key: MakeKey) -> dict[str, str]:
    return await make_key(Scope.route, Scope.act, Scope.read)
