"""What the lifespan owns and hands out: engine, sessions, HTTP client, connectors, policies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
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
    connectors: Connectors
    policy: PolicyBook
    idempotency: Idempotency


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
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
    try:
        connectors = Connectors.for_channels(channels, http)
    except BaseException:
        await http.aclose()
        raise
    engine = create_engine(settings.database_url)
    sessions = create_sessionmaker(engine)
    try:
        yield Runtime(
            settings=settings,
            engine=engine,
            sessions=sessions,
            http=http,
            connectors=connectors,
            policy=policy,
            idempotency=Idempotency(sessions, timedelta(hours=settings.idempotency_ttl_hours)),
        )
    finally:
        await http.aclose()
        await engine.dispose()
