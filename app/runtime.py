"""What the lifespan owns and hands out: engine, sessions, HTTP client, connectors, policies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.channels import ShopifyChannel
from app.connectors.registry import Connectors
from app.db.engine import create_engine, create_sessionmaker
from app.policy import PolicyBook
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
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)))
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
        yield Runtime(
            settings=settings,
            engine=engine,
            sessions=sessions,
            http=http,
            redis=redis,
            connectors=connectors,
            policy=policy,
            idempotency=Idempotency(sessions, timedelta(hours=settings.idempotency_ttl_hours)),
        )
