"""The database engine, created by the lifespan and never at import time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.database import Database


def create_engine(url: str, **options: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **options)
        _tune_sqlite(engine)
        return engine
    # A fixed pool: overflow connections are opened and closed again under every burst, and opening
    # one (TLS negotiation included) costs more CPU than the hundreds of statements it would serve.
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 0)
    options.setdefault("pool_timeout", 10)
    # No pre-ping: `Database` replaces a closed connection at checkout without a round trip.
    options.setdefault("pool_pre_ping", False)
    options.setdefault("connect_args", {"command_timeout": 30})
    return create_async_engine(url, **options)


def open_database(url: str, **options: Any) -> Database:
    """The service's one database handle (and its one pool); nothing connects before first use."""
    return Database(create_engine(url, **options))


def _tune_sqlite(engine: AsyncEngine) -> None:
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
