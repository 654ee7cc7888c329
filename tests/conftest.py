"""The suite runs against a real database: PostgreSQL by default, SQLite when TEST_DATABASE_URL says so.

Each test process (one per xdist worker) makes a database of its own, migrated with Alembic (never
`create_all`); every test that uses it starts with every table the migrations made emptied.

Apps: `app` (and `client`, `runtime`) is one sandbox app per process, for tests that only send it
requests; a test that watches or changes what an app keeps (its caches, its connectors' state, its
background tasks) takes `fresh_app`, or `live_app` for the live Shopify channel, which are its own.
Metrics are per process whatever the app: the `metrics` fixture zeroes them for a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx
from fastapi import FastAPI, Request
from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.metrics import MetricWrapperBase
from pydantic import SecretStr
from sqlalchemy import MetaData, Table, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app import metrics as app_metrics
from app.db.engine import create_engine
from app.db.migrate import upgrade
from app.main import create_app
from app.observability import configure_logging
from app.routers import webhooks
from app.runtime import Runtime
from app.services import api_keys
from app.services.api_keys import Scope
from app.settings import Settings
from tests.fakes.shopify_admin import ADMIN_URL, TOKEN, FakeShopify
from tests.sqs_server import queue_url, sqs_endpoint  # noqa: F401 - fixtures: a local SQS server
from tests.webhook_builders import PREVIOUS_WEBHOOK_SECRET, WEBHOOK_SECRET

DEFAULT_TEST_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"

MakeKey = Callable[..., Awaitable[dict[str, str]]]


def _worker() -> str:
    """`gw0`, `gw1` ... under pytest-xdist; `main` when the suite runs in one process."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A new, migrated database for this test process: workers never share rows or locks."""
    base = os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE)
    url = make_url(base)
    if url.get_backend_name() == "sqlite":
        path = Path(tmp_path_factory.mktemp("db")) / "returns-router.db"
        rendered = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(upgrade, rendered)
        yield rendered
        return
    name = f"returns_router_test_{_worker()}_{uuid.uuid4().hex[:8]}"
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
async def database_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The suite's own engine on the test database, beside (never inside) the apps under test."""
    # Pre-ping: some tests kill every connection to the database, this engine's too. Two idle
    # connections at most: the server's connections are shared by every test process.
    engine = create_engine(database_url, pool_pre_ping=True, pool_size=2, max_overflow=8)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def migrated_tables(database_engine: AsyncEngine) -> list[Table]:
    """Every table the migrations made (read back from the database), children before parents."""
    metadata = MetaData()
    async with database_engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
    return [table for table in reversed(metadata.sorted_tables) if table.name != "alembic_version"]


@pytest.fixture
async def empty_database(database_engine: AsyncEngine, migrated_tables: list[Table]) -> None:
    # DELETE rather than TRUNCATE: on a handful of rows it takes a millisecond or two, where
    # TRUNCATE's new files cost a quarter of a second per test on PostgreSQL.
    async with database_engine.begin() as connection:
        for table in migrated_tables:
            await connection.execute(table.delete())


@pytest.fixture(autouse=True)
def _database_isolation(request: pytest.FixtureRequest) -> None:
    """Any test that reaches the database, by whatever fixture, starts with every table empty."""
    if "database_url" in request.fixturenames:
        request.getfixturevalue("empty_database")


@pytest.fixture(scope="session")
def sessions(database_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(database_engine, expire_on_commit=False)


@pytest.fixture
def log_lines(settings: Settings) -> Iterator[io.StringIO]:
    """Every log line, at DEBUG, as the service writes them in production (JSON)."""
    buffer = io.StringIO()
    configure_logging("DEBUG", "json", stream=buffer)
    yield buffer
    configure_logging(settings.log_level, settings.log_format)


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
        # The suite's apps wait longer than the service's defaults before they shed load with a 503:
        # on a busy machine a burst of test requests may queue for seconds. The fault tests set
        # their own, short ones.
        database_pool_timeout_seconds=15.0,
        database_statement_timeout_seconds=15.0,
    )


async def delivered_promptly(request: Request) -> datetime:
    """In the suite, a webhook arrives a second after the latest moment it states (its
    `X-Shopify-Triggered-At`, its payload's `updated_at` and `created_at`), so that the dates the
    tests give their deliveries are believed (see `inbox.DELIVERY_AGE`); never later than now."""
    try:
        payload = json.loads(await request.body())
    except (ValueError, RecursionError):
        payload = None
    stated = [request.headers.get("X-Shopify-Triggered-At")]
    if isinstance(payload, dict):
        stated += [payload.get("updated_at"), payload.get("created_at")]
    moments = []
    for moment in stated:
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            moments.append(datetime.fromisoformat(moment).astimezone(UTC))
    now = datetime.now(UTC)
    return min(max(moments) + timedelta(seconds=1), now) if moments else now


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[FastAPI]:
    """A new app on `settings`, its lifespan started: pools, caches and background tasks of its own."""
    application = create_app(settings)
    application.dependency_overrides[webhooks.arrival] = delivered_promptly
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def client_of(application: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as http:
        yield http


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a new app on `settings` (see `running`), in-process."""
    async with running(settings) as application, client_of(application) as http:
        yield http


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The sandbox app of this test process, shared by its tests (a new one costs about 0.1 s)."""
    async with running(settings) as application:
        yield application


@pytest.fixture
async def fresh_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """A sandbox app of this test's own: caches, connectors and background tasks start empty."""
    async with running(settings) as application:
        yield application


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(app) as http:
        yield http


@pytest.fixture
def make_key(sessions: async_sessionmaker[AsyncSession]) -> MakeKey:
    """Issue an API key with the given scopes; returns the Authorization header for it."""

    async def make(*scopes: Scope, name: str = "test helpdesk") -> dict[str, str]:
        async with sessions.begin() as session:
            _row, key = await api_keys.issue(session, name, set(scopes))
        return {"Authorization": f"Bearer {key}"}

    return make


class Metrics:
    """The service's Prometheus metrics, read from this process's registry."""

    def value(self, name: str, **labels: str) -> float:
        """A sample's value; 0 for a series nothing recorded."""
        return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def metrics() -> Metrics:
    """The service's metrics, every series zeroed for this test.

    prometheus-client keeps them per process, whatever the app; each xdist worker is a process and
    runs its tests one at a time, so a test reads its own counts.
    """
    for metric in vars(app_metrics).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        if metric._labelnames:
            metric.clear()
        elif isinstance(metric, Gauge):
            metric.set(0)
        elif isinstance(metric, Counter):
            metric.reset()
        else:
            raise TypeError(f"no way to zero {metric!r} yet")
    return Metrics()


# --- A live Shopify channel pointed at the fake Admin endpoint ---------------------------------


@pytest.fixture
async def live_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app of this test alone: its Shopify connector keeps the fake's throttle state, and its
    reconciler must not finish another test's actions."""
    live = settings.model_copy(
        update={
            "channel_shopify_ca_admin_url": ADMIN_URL,
            "channel_shopify_ca_access_token": SecretStr(TOKEN),
        }
    )
    async with running(live) as application:
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
async def live(live_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(live_app) as http:
        yield http


@pytest.fixture
async def agent(make_key: MakeKey) -> dict[str, str]:
    return await make_key(Scope.route, Scope.act, Scope.read)
