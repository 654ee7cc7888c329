"""What the lifespan owns and hands out: engine, sessions, HTTP client, connectors, policies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.channels import ShopifyChannel
from app.connectors.registry import Connectors
from app.connectors.transport import AiohttpTransport
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
    redis: Redis | None
    connectors: Connectors
    policy: PolicyBook
    idempotency: Idempotency
    api_keys: Authenticator
    # PostgreSQL only: raw asyncpg connections for the one-statement decision INSERT (see app.db.engine).
    appends: asyncpg.Pool | None


def load_policy_book(settings: Settings) -> PolicyBook:
    """Every policy file the settings name, checked; raises `PolicyFileError` on the first bad one."""
    return PolicyBook.load(
        {
            key: channel.policy_file
            for key, channel in settings.channels.items()
            if isinstance(channel, ShopifyChannel) and channel.policy_file is not None
        },
        routing_file=settings.routing_file,
    )


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    # Policies first: a bad policy file stops start-up before anything is opened.
    policy = load_policy_book(settings)
    async with AsyncExitStack() as stack:
        # Neither client connects before its first use.
        http = await stack.enter_async_context(open_http_client(settings))
        redis = (
            await stack.enter_async_context(Redis.from_url(settings.redis_url))
            if settings.redis_url
            else None
        )
        connectors = Connectors.for_channels(
            settings.channels,
            http=http,
            redis=redis,
            max_wait=settings.upstream_max_wait_seconds,
            order_max_age=settings.order_cache_max_age_seconds,
        )
        engine = create_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        sessions = create_sessionmaker(engine)
        appends = await open_append_pool(settings.database_url)
        if appends is not None:
            stack.push_async_callback(appends.close)
        yield Runtime(
            settings=settings,
            engine=engine,
            sessions=sessions,
            http=http,
            redis=redis,
            connectors=connectors,
            policy=policy,
            idempotency=Idempotency(sessions, timedelta(hours=settings.idempotency_ttl_hours)),
            api_keys=Authenticator(sessions, settings.api_key_cache_seconds),
            appends=appends,
        )


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
