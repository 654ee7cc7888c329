"""The database engine, created by the lifespan and never at import time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.database import SQLITE_BEGIN, Database


@dataclass(frozen=True)
class Timeouts:
    """How long the service waits on PostgreSQL before it answers 503 `database_unavailable`.

    A database that stops answering without closing its connections (a network partition, a frozen
    host) is otherwise waited on for as long as TCP takes to give up: minutes.
    """

    connect: float = 3.0  # to open a connection (asyncpg's `timeout`)
    pool: float = 2.0  # to get a connection when the pool's are all in use (`pool_timeout`)
    statement: float = 3.0  # for one statement: asyncpg's `command_timeout`, PostgreSQL's `statement_timeout`


# Commands (keys, replay, outcome imports) wait longer than a request: a statement may scan many rows.
FOR_COMMANDS = Timeouts(connect=10.0, pool=30.0, statement=300.0)


def create_engine(url: str, timeouts: Timeouts | None = None, **options: Any) -> AsyncEngine:
    # Parameters never appear in an error's message or a log line: they carry ticket ids and orders.
    options.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **options)
        _tune_sqlite(engine)
        return engine
    timeouts = timeouts or FOR_COMMANDS
    # A fixed pool: overflow connections are opened and closed again under every burst, and opening
    # one (TLS negotiation included) costs more CPU than the hundreds of statements it would serve.
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 0)
    options.setdefault("pool_timeout", timeouts.pool)
    # No pre-ping: `Database` replaces a closed connection at checkout without a round trip.
    options.setdefault("pool_pre_ping", False)
    options.setdefault(
        "connect_args",
        {
            "timeout": timeouts.connect,
            # The client's bound catches a server that went silent; the server's own ends the
            # statement there too, instead of leaving it running for nobody.
            "command_timeout": timeouts.statement,
            "server_settings": {"statement_timeout": str(round(timeouts.statement * 1000))},
        },
    )
    return create_async_engine(url, **options)


def open_database(url: str, timeouts: Timeouts | None = None, **options: Any) -> Database:
    """The service's one database handle (and its one pool); nothing connects before first use."""
    return Database(create_engine(url, timeouts, **options))


def _tune_sqlite(engine: AsyncEngine) -> None:
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        # The driver would begin a transaction only at the first write, so a SAVEPOINT before it
        # would be the outermost, and releasing it would commit: the transaction begins here instead.
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the lock as it begins (waiting for another writer up to the busy timeout),
        # so that what it read before writing cannot go stale under it.
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())
