"""What the lifespan owns and hands out: engine, sessions, HTTP client, connectors, policies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import httpx
from httpx_aiohttp import AiohttpTransport
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.channels import ShopifyChannel
from app.connectors.registry import Connectors
from app.db.engine import create_engine, create_sessionmaker, open_append_pool
from app.policy import PolicyBook
from app.services.api_keys import Authenticator
from app.services.idempotency import Idempotency
from app.settings import Settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    connectors: Connectors
    policy: PolicyBook
    idempotency: Idempotency
    api_keys: Authenticator
    # PostgreSQL only: raw asyncpg connections for the one-statement decision INSERT (see app.db.engine).
    appends: asyncpg.Pool | None


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    channels = settings.channels
    # Policies and connectors first: a bad policy file stops start-up before anything is opened.
    policy = PolicyBook.load(
        {
            key: channel.policy_file
            for key, channel in channels.items()
            if isinstance(channel, ShopifyChannel) and channel.policy_file is not None
        }
    )
    connectors = Connectors.for_channels(channels)
    engine = create_engine(settings.database_url)
    sessions = create_sessionmaker(engine)
    http = open_http_client(settings)
    appends = await open_append_pool(settings.database_url)
    try:
        yield Runtime(
            settings=settings,
            engine=engine,
            sessions=sessions,
            http=http,
            connectors=connectors,
            policy=policy,
            idempotency=Idempotency(sessions, timedelta(hours=settings.idempotency_ttl_hours)),
            api_keys=Authenticator(sessions, settings.api_key_cache_seconds),
            appends=appends,
        )
    finally:
        if appends is not None:
            await appends.close()
        await http.aclose()
        await engine.dispose()


def open_http_client(settings: Settings) -> httpx.AsyncClient:
    """The client every connector shares: httpx's API, on aiohttp's connections by default.

    Measured by bench/outbound.py, httpx's own transport (httpcore) costs about ten times the CPU
    per call under concurrency. `HTTP_TRANSPORT=httpx` keeps httpcore, which is what respx mocks:
    the test suite runs on it.
    """
    timeout = httpx.Timeout(10.0, connect=5.0)
    if settings.http_transport == "aiohttp":
        return httpx.AsyncClient(timeout=timeout, transport=AiohttpTransport())
    return httpx.AsyncClient(timeout=timeout)
