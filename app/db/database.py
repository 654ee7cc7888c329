"""The database as the services use it: one engine, one pool, and the only place a transaction begins.

`transaction()` is the unit of work: everything written inside it commits together or not at all.
`reading()` is a session for reads, rolled back when it closes. `driver()` lends the pool's own
driver connection for the one statement on the hot path (`decisions.save`), which costs a fraction
of a session's CPU; it runs outside any transaction, so it is for single-statement writes only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from app.errors import DatabaseUnavailable

# What a lost or refused connection raises from asyncpg: the database's trouble, not a bug.
_CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
)


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)

    def transaction(self) -> Any:
        """`async with database.transaction() as session:` commits on success, rolls back on error."""
        return self._sessions.begin()

    def reading(self) -> AsyncSession:
        """`async with database.reading() as session:` for reads; nothing it does is committed."""
        return self._sessions()

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """The driver's own connection (asyncpg or aiosqlite), back to the pool afterwards.

        A connection that failed under it is discarded rather than handed out again, and the failure
        is the database's: 503 `database_unavailable`.
        """
        pooled = await self.engine.raw_connection()
        try:
            yield pooled.driver_connection
        except _CONNECTION_ERRORS as error:
            pooled.invalidate(error)
            raise DatabaseUnavailable(
                "The database cannot be reached; retry shortly.", headers={"Retry-After": "5"}
            ) from error
        finally:
            pooled.close()

    async def dispose(self) -> None:
        await self.engine.dispose()


def _refuse_closed_connection(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    """At checkout, a connection the server or the network closed is replaced, without a round trip.

    asyncpg notices a closed socket as soon as the event loop reads it, so this catches what a
    pre-ping (a round trip and ~130 µs of CPU on every checkout) would, for idle connections.
    """
    if _lost(record.driver_connection):
        raise DisconnectionError("the pooled connection was closed")


def _lost(connection: Any) -> bool:
    is_closed = getattr(connection, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False
