"""The database as the services use it: one engine, one pool, and the only place a transaction begins.

`transaction()` is the unit of work: everything written inside it commits together or not at all.
`reading()` is a session for reads, rolled back when it closes. `driver()` lends the pool's own
driver connection for the one statement on the hot path (`decisions.save`), which costs a fraction
of a session's CPU; it runs outside any transaction, so it is for single-statement writes only.

Every one of them answers a database that cannot be reached, that stopped answering (a timeout) or
whose pool is exhausted with `DatabaseUnavailable` (503 `database_unavailable`, `Retry-After`), and
never hands out again a connection that failed that way.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import asyncpg
import structlog
from sqlalchemy import event, exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from app.errors import DatabaseUnavailable

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 5
# The execution option that makes a transaction begin as SQLite's writer (see app.db.engine).
SQLITE_BEGIN = "sqlite_begin"

# What a lost, refused or silent connection raises from the driver: the database's trouble, not a bug.
# (A timeout is `TimeoutError`: asyncpg's connect `timeout` and `command_timeout` raise it.)
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # the server is shutting down, or ended the session
    asyncpg.InsufficientResourcesError,  # too many connections, out of memory or disk
    asyncpg.QueryCanceledError,  # the server's own `statement_timeout`
)

# What the drivers raise: their messages may quote the values of a statement.
_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlite3.Error,
)

# SQLite's own: another writer held the lock past the busy timeout, or the file cannot be used.
_SQLITE_UNAVAILABLE = re.compile(r"database is locked|unable to open database|disk I/O error", re.IGNORECASE)


def unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot serve now (down, silent, exhausted), as opposed to a bug."""
    if isinstance(error, DatabaseUnavailable | exc.TimeoutError):  # the pool had no connection in time
        return True
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, exc.OperationalError) and _SQLITE_UNAVAILABLE.search(str(error.orig)):
            return True
        error = error.orig or error
    cause = getattr(error, "__cause__", None)
    return isinstance(error, _CONNECTION_ERRORS) or isinstance(cause, _CONNECTION_ERRORS)


def described(error: BaseException) -> str:
    """An error as a log line or a stored event may show it.

    A database error's message quotes what the statement carried (`DETAIL: Key (ticket_id)=(T-88213)
    already exists`, a failing row, an invalid parameter): of those only the kind and the SQLSTATE
    are shown. Any other error is its type and message.
    """
    if not is_database_error(error):
        return f"{type(error).__name__}: {error}"
    chain = _chain(error)
    named = [error, *(e for e in chain if isinstance(e, _DRIVER_ERRORS))]  # the error, and the driver's
    kinds = list(dict.fromkeys(f"{type(e).__module__.split('.')[0]}.{type(e).__name__}" for e in named))
    sqlstate = next((getattr(e, "sqlstate", None) for e in chain if getattr(e, "sqlstate", None)), None)
    return " from ".join(kinds) + (f" (SQLSTATE {sqlstate})" if sqlstate else "")


def is_database_error(error: BaseException) -> bool:
    """Raised by the database or its driver (or wrapping such an error)."""
    return any(isinstance(e, (exc.StatementError, *_DRIVER_ERRORS)) for e in _chain(error))


def _chain(error: BaseException) -> list[BaseException]:
    """The error, what it wraps (`orig`) and what caused it, each once."""
    chain: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        item = pending.pop(0)
        if item is None or any(item is seen for seen in chain) or len(chain) > 10:
            continue
        chain.append(item)
        pending += [getattr(item, "orig", None), item.__cause__, item.__context__]
    return chain


def unavailable_problem() -> DatabaseUnavailable:
    return DatabaseUnavailable(
        "The database cannot be reached; retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite's writer begins IMMEDIATE (see app.db.engine); PostgreSQL ignores the option.
        self._writing = async_sessionmaker(
            engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}), expire_on_commit=False
        )
        event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
        event.listen(engine.sync_engine, "handle_error", _discard_failed_connection)
        # The hot path's requests queue for a connection here, on a plain semaphore as large as
        # the pool: in the pool's own queue each waiter costs a task and greenlet switches, which
        # with 64 requests in flight was a fifth of a route's CPU (in-process, 32 concurrent:
        # a checkout and SELECT 1 cost 140 µs more than an await of the same length).
        size, timeout = getattr(engine.pool, "size", None), getattr(engine.pool, "timeout", None)
        self._slots = asyncio.Semaphore(size()) if callable(size) else None
        self._slot_timeout = float(timeout()) if callable(timeout) else 30.0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """`async with database.transaction() as session:` commits on success, rolls back on error."""
        try:
            async with self._writing.begin() as session:
                yield session
        except Exception as error:
            _raise_as_problem(error)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """`async with database.reading() as session:` for reads; nothing it does is committed."""
        session = self._sessions()
        try:
            yield session
        except Exception as error:
            await _close_quietly(session)
            _raise_as_problem(error)
        # The reads are done (a request's answer may be on its way already): a database that stops
        # answering now costs the rollback's timeout, and nothing to report.
        await _close_quietly(session)

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """The driver's own connection (asyncpg or aiosqlite), back to the pool afterwards.

        A connection that failed under it is discarded rather than handed out again.
        """
        async with self._slot():
            try:
                pooled = await self.engine.raw_connection()
            except Exception as error:
                _raise_as_problem(error)
            try:
                yield pooled.driver_connection
            except _CONNECTION_ERRORS as error:
                _abort(pooled.driver_connection)
                pooled.invalidate(error)
                raise unavailable_problem() from error
            finally:
                pooled.close()

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """A place in the queue for the pool; waiting no longer than the pool would (then 503)."""
        if self._slots is None:
            yield
            return
        if self._slots.locked():
            try:
                async with asyncio.timeout(self._slot_timeout):
                    await self._slots.acquire()
            except TimeoutError as error:
                log.warning("database_unavailable", error="pool exhausted")
                raise unavailable_problem() from error
        else:
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()

    async def dispose(self) -> None:
        await self.engine.dispose()


async def _close_quietly(session: AsyncSession) -> None:
    try:
        await session.close()
    except Exception as error:
        if not unavailable(error):
            raise
        log.warning("database_unavailable", error=type(error).__name__, closing=True)


def _raise_as_problem(error: Exception) -> NoReturn:
    """Raise `DatabaseUnavailable` for an error that is the database's; any other error as it is."""
    if isinstance(error, DatabaseUnavailable) or not unavailable(error):
        raise error
    log.warning("database_unavailable", error=type(error).__name__)
    raise unavailable_problem() from error


def _discard_failed_connection(context: ExceptionContext) -> BaseException | None:
    """A statement, commit or rollback whose connection failed: close it at once, and answer 503.

    After a timeout asyncpg is still cancelling the statement, and anything sent on that connection
    (the session's ROLLBACK, the pool's reset, a graceful close) waits for a server that may never
    answer. Aborting the socket first makes the rollback and the invalidation that follow instant.
    """
    if not unavailable(context.original_exception):
        return None
    connection = context.connection
    if connection is not None and not connection.closed and not connection.invalidated:
        _abort(connection.connection.driver_connection)
    log.warning("database_unavailable", error=type(context.original_exception).__name__)
    context.is_disconnect = True
    # The pool's other connections are checked when they are next used: recycling them all here
    # would close each one gracefully, waiting on a server that is not answering.
    context.invalidate_pool_on_disconnect = False
    return unavailable_problem()


def _abort(driver_connection: Any) -> None:
    """Close the driver's socket without a goodbye (asyncpg); aiosqlite has nothing to abort."""
    terminate = getattr(driver_connection, "terminate", None)
    if callable(terminate):
        terminate()


def _refuse_closed_connection(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    """At checkout, a connection the server or the network closed is replaced, without a round trip.

    asyncpg notices a closed socket as soon as the event loop reads it, so this catches what a
    pre-ping (a round trip and ~130 µs of CPU on every checkout) would, for idle connections.
    """
    if _lost(record.driver_connection):
        raise exc.DisconnectionError("the pooled connection was closed")


def _lost(connection: Any) -> bool:
    is_closed = getattr(connection, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False
