"""The database engine and sessions, created by the lifespan and never at import time."""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def create_engine(url: str, **options: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **options)
        _tune_sqlite(engine)
        return engine
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 10)
    options.setdefault("pool_pre_ping", True)
    options.setdefault("pool_timeout", 10)
    return create_async_engine(url, **options)


def _tune_sqlite(engine: AsyncEngine) -> None:
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def open_append_pool(url: str) -> asyncpg.Pool | None:
    """On PostgreSQL, a small pool of raw asyncpg connections for the decision INSERT, else None.

    SQLAlchemy's session, transaction and pre-ping cost several round trips and over a millisecond of
    CPU around a one-statement write; asyncpg alone costs one round trip. No connection is opened
    here (min_size=0), so the service starts, and reports 503, while PostgreSQL is away.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=10,
        timeout=5,
        command_timeout=30,
        max_inactive_connection_lifetime=60,
        reset=_keep_session_state,
    )
    return pool


async def _keep_session_state(_connection: asyncpg.Connection) -> None:
    """The pool's default reset is a round trip per release; one INSERT leaves no state to reset."""
