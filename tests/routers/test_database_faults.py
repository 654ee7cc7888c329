"""PostgreSQL going away and coming back, and connections killed mid-request.

The database is taken away through a TCP proxy on 127.0.0.1 that the test closes and opens (the
shared server is never stopped), and killed with `pg_terminate_backend`, only ever for backends
of the suite's own database. Each fault ends in 503 `database_unavailable`, nothing half-written,
and the next request served normally, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url

from app.services.api_keys import Scope
from app.settings import Settings
from tests.conftest import MakeKey, serving
from tests.polling import poll_until
from tests.webhook_builders import delivery, return_request_payload

ROUTE = "/v1/returns/route"
BODY = {"order_ref": "113-4567890-1234567", "as_of": "2026-12-03T15:00:00Z"}


@pytest.fixture(autouse=True)
def postgresql_only(database_url: str) -> None:
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("faults of a PostgreSQL server")


def raw_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class DatabaseProxy:
    """A TCP proxy to PostgreSQL on a local port of its own that can be closed (refusing, and cutting
    every open connection) and opened again.

    Closed, it keeps its port bound without listening: connections are refused, and no other
    process (tests run in parallel) can take the port before it opens again. As a black hole, it
    accepts and keeps connections but forwards nothing either way, as when a host freezes or the
    network between drops every packet without a reset.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._reserved: socket.socket | None = self._reserve(0)
        self.port: int = self._reserved.getsockname()[1]
        self.black_hole = False
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @staticmethod
    def _reserve(port: int) -> socket.socket:
        reserved = socket.socket()
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.bind(("127.0.0.1", port))
        return reserved

    async def open(self) -> None:
        assert self._reserved is not None, "already open"
        self._server = await asyncio.start_server(self._serve, sock=self._reserved)
        self._reserved = None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            self._reserved = self._reserve(self.port)
        for writer in list(self._writers):
            writer.transport.abort()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def release(self) -> None:
        await self.close()
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update({client_writer, upstream_writer})
        pipes = [
            asyncio.create_task(self._pipe(client_reader, upstream_writer)),
            asyncio.create_task(self._pipe(upstream_reader, client_writer)),
        ]
        self._pipes.update(pipes)
        await asyncio.gather(*pipes, return_exceptions=True)
        for writer in (client_writer, upstream_writer):
            writer.transport.abort()
            self._writers.discard(writer)
        self._pipes.difference_update(pipes)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if not self.black_hole:  # in the black hole, the bytes are lost
                    writer.write(data)
                    await writer.drain()
        writer.transport.abort()


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[DatabaseProxy]:
    url = make_url(database_url)
    proxy = DatabaseProxy(url.host or "127.0.0.1", url.port or 5432)
    yield proxy
    await proxy.release()


# Short, so that each fault costs the suite a second or two; the defaults are a few seconds.
SHORT_TIMEOUTS = {
    "database_connect_timeout_seconds": 2.0,
    "database_pool_timeout_seconds": 1.0,
    "database_statement_timeout_seconds": 2.0,
}
# Far above the timeouts: a request still unanswered by then hangs, and the test fails rather than wait.
HANG = 30.0


@pytest.fixture
async def proxied(
    proxy: DatabaseProxy, settings: Settings, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The service on the suite's database, through the proxy, started while the proxy is closed."""
    through_proxy = make_url(database_url).set(port=proxy.port).render_as_string(hide_password=False)
    async with serving(settings.model_copy(update={"database_url": through_proxy, **SHORT_TIMEOUTS})) as http:
        yield http


async def count_decisions(database_url: str) -> int:
    connection = await asyncpg.connect(raw_dsn(database_url))
    try:
        return int(await connection.fetchval("SELECT count(*) FROM decisions"))
    finally:
        await connection.close()


def assert_database_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"]


async def test_down_at_start_up_then_back_without_a_restart(
    proxied: httpx.AsyncClient, proxy: DatabaseProxy, make_key: MakeKey, database_url: str
) -> None:
    headers = await make_key(Scope.route)
    assert_database_unavailable(await proxied.get("/readyz"))
    assert_database_unavailable(await proxied.post(ROUTE, json=BODY, headers=headers))
    assert (await proxied.get("/healthz")).status_code == 200

    await proxy.open()
    assert (await proxied.get("/readyz")).status_code == 200
    routed = await proxied.post(ROUTE, json=BODY, headers=headers)
    assert routed.status_code == 201, routed.text
    assert await count_decisions(database_url) == 1


@pytest.mark.parametrize("idempotency_key", [None, "retry-me-1"])
async def test_down_while_serving_then_back(
    proxied: httpx.AsyncClient,
    proxy: DatabaseProxy,
    make_key: MakeKey,
    database_url: str,
    idempotency_key: str | None,
) -> None:
    headers = await make_key(Scope.route)
    await proxy.open()
    assert (await proxied.post(ROUTE, json=BODY, headers=headers)).status_code == 201  # the key is now known
    if idempotency_key is not None:
        headers = {**headers, "Idempotency-Key": idempotency_key}

    await proxy.close()  # refuses new connections and cuts the pooled ones
    assert_database_unavailable(await proxied.post(ROUTE, json=BODY, headers=headers))
    assert_database_unavailable(await proxied.get("/readyz"))
    assert await count_decisions(database_url) == 1

    await proxy.open()
    again = await proxied.post(ROUTE, json=BODY, headers=headers)
    assert again.status_code == 201, again.text
    assert "idempotent-replayed" not in again.headers
    assert await count_decisions(database_url) == 2


@pytest.fixture
async def locker(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection that can hold the decisions table, so a request's INSERT waits on it."""
    connection = await asyncpg.connect(raw_dsn(database_url))
    yield connection
    await connection.close()


async def terminate_waiting_backend(locker: asyncpg.Connection) -> int:
    """Kill the backend of this database that waits on the lock: the request's, mid-statement."""

    async def killed() -> int:
        return int(
            await locker.fetchval(
                """
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
                """
            )
        )

    return await poll_until("a request waiting on the lock", killed, within=10)


@pytest.mark.parametrize("idempotency_key", [None, "killed-mid-request"])
async def test_a_connection_killed_mid_request(
    client: httpx.AsyncClient,
    make_key: MakeKey,
    locker: asyncpg.Connection,
    database_url: str,
    idempotency_key: str | None,
) -> None:
    headers = await make_key(Scope.route)
    assert (await client.post(ROUTE, json=BODY, headers=headers)).status_code == 201
    if idempotency_key is not None:
        headers = {**headers, "Idempotency-Key": idempotency_key}

    transaction = locker.transaction()
    await transaction.start()
    await locker.execute("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
    request = asyncio.create_task(client.post(ROUTE, json=BODY, headers=headers))
    try:
        assert await terminate_waiting_backend(locker) == 1
    finally:
        await transaction.rollback()
    assert_database_unavailable(await request)
    assert await count_decisions(database_url) == 1  # nothing half-written

    # Served normally afterwards, with the same Idempotency-Key too: the failed request freed it.
    again = await client.post(ROUTE, json=BODY, headers=headers)
    assert again.status_code == 201, again.text
    assert "idempotent-replayed" not in again.headers
    assert await count_decisions(database_url) == 2


async def test_every_idle_connection_killed_is_recovered_without_an_error(
    client: httpx.AsyncClient, make_key: MakeKey, locker: asyncpg.Connection, database_url: str
) -> None:
    headers = await make_key(Scope.route, Scope.read)
    made = await client.post(ROUTE, json=BODY, headers=headers)
    assert made.status_code == 201
    # With a timeout, pg_terminate_backend returns once each backend has exited, its socket closed.
    terminated = await locker.fetchval(
        "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    assert terminated
    # Their ends reached the pools' sockets before that answer did; one more round trip here lets
    # the pools read them. The test is of connections that died while idle, not of a request that
    # races the kill.
    await locker.fetchval("SELECT 1")
    assert (await client.post(ROUTE, json=BODY, headers=headers)).status_code == 201
    assert (
        await client.get(f"/v1/decisions/{made.json()['decision_id']}", headers=headers)
    ).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    assert await count_decisions(database_url) == 2


# --- A database that stops answering, and one whose pool is exhausted ------------------------------


async def answered(request: Awaitable[httpx.Response]) -> httpx.Response:
    async with asyncio.timeout(HANG):
        return await request


async def test_a_database_that_stops_answering_is_503_for_every_request_then_back(
    proxied: httpx.AsyncClient, proxy: DatabaseProxy, make_key: MakeKey, database_url: str
) -> None:
    headers = await make_key(Scope.route, Scope.read)
    await proxy.open()
    assert (await proxied.post(ROUTE, json=BODY, headers=headers)).status_code == 201
    assert (await proxied.get("/readyz")).status_code == 200
    webhook_body, webhook_headers = delivery(return_request_payload())

    proxy.black_hole = True  # the pooled connections stay open: nothing is reset, nothing answers
    assert_database_unavailable(await answered(proxied.post(ROUTE, json=BODY, headers=headers)))
    assert_database_unavailable(await answered(proxied.get("/v1/decisions", headers=headers)))
    assert_database_unavailable(await answered(proxied.get("/readyz")))
    # Shopify waits 5 seconds for an acknowledgement; the 503 tells it to deliver again later.
    assert_database_unavailable(
        await answered(proxied.post("/webhooks/shopify", content=webhook_body, headers=webhook_headers))
    )
    assert (await proxied.get("/healthz")).status_code == 200

    proxy.black_hole = False
    assert (await answered(proxied.get("/readyz"))).status_code == 200
    again = await answered(proxied.post(ROUTE, json=BODY, headers=headers))
    assert again.status_code == 201, again.text
    acknowledged = await proxied.post("/webhooks/shopify", content=webhook_body, headers=webhook_headers)
    assert acknowledged.json()["status"] == "accepted"
    assert await count_decisions(database_url) == 2


async def test_a_database_silent_from_the_start_is_503_not_a_hang(
    proxied: httpx.AsyncClient, proxy: DatabaseProxy, make_key: MakeKey
) -> None:
    headers = await make_key(Scope.route)
    proxy.black_hole = True
    await proxy.open()  # connections are accepted, and never answered

    assert_database_unavailable(await answered(proxied.get("/readyz")))
    assert_database_unavailable(await answered(proxied.post(ROUTE, json=BODY, headers=headers)))

    proxy.black_hole = False
    assert (await answered(proxied.get("/readyz"))).status_code == 200


@pytest.fixture
async def short_timeouts(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The service on the suite's database, directly, with the short timeouts."""
    async with serving(settings.model_copy(update=SHORT_TIMEOUTS)) as http:
        yield http


async def test_an_exhausted_pool_is_503_not_500(
    short_timeouts: httpx.AsyncClient, make_key: MakeKey, locker: asyncpg.Connection
) -> None:
    headers = await make_key(Scope.read)
    assert (await short_timeouts.get("/v1/decisions", headers=headers)).status_code == 200  # key known

    # Every list call waits on the lock: twenty hold the pool's connections, the rest wait for one.
    transaction = locker.transaction()
    await transaction.start()
    await locker.execute("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
    try:
        responses = await answered(
            asyncio.gather(*(short_timeouts.get("/v1/decisions", headers=headers) for _ in range(300)))
        )
    finally:
        await transaction.rollback()

    assert {r.status_code for r in responses} == {503}
    for response in responses:
        assert_database_unavailable(response)
    assert (await short_timeouts.get("/v1/decisions", headers=headers)).status_code == 200
