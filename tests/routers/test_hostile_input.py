"""Hostile input: every refusal is problem+json with a stable code, and nothing is stored."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.tables import Decision as DecisionRow
from app.services.api_keys import Scope
from tests.asgi import raw_scope, send_raw
from tests.conftest import MakeKey

ROUTE = "/v1/returns/route"
BODY = {"order_ref": "113-4567890-1234567", "as_of": "2026-12-03T15:00:00Z"}
LIMIT = 64 * 1024


@pytest.fixture
async def route_key(make_key: MakeKey) -> dict[str, str]:
    return await make_key(Scope.route)


async def stored(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(DecisionRow))).scalar_one())


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["type"].endswith(code)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_body_over_the_limit_is_413_before_anything_runs(
    client: httpx.AsyncClient, route_key: dict[str, str], sessions: async_sessionmaker[AsyncSession]
) -> None:
    padded = {**BODY, "customer_message": "x" * LIMIT}
    response = await client.post(ROUTE, json=padded, headers=route_key)
    assert_problem(response, 413, "body_too_large")
    assert await stored(sessions) == 0


async def test_the_limit_counts_streamed_bytes_not_content_length(
    client: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    # Chunked: no Content-Length at all, and the bytes keep coming past the limit.
    streamed = chunks(b'{"order_ref": "113-4567890-1234567", "customer_message": "', b"y" * LIMIT, b'"}')
    headers = {**route_key, "Content-Type": "application/json"}
    response = await client.post(ROUTE, content=streamed, headers=headers)
    assert_problem(response, 413, "body_too_large")


async def test_a_lying_content_length_does_not_get_a_large_body_in(app: FastAPI) -> None:
    """Raw ASGI: the header says 10 bytes, the body is far larger."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"10")]
    body = b"{" + b" " * (LIMIT + 10) + b"}"
    sent = await send_raw(app, raw_scope(ROUTE, headers), [{"type": "http.request", "body": body}])
    assert sent[0]["status"] == 413


async def test_a_body_just_under_the_limit_is_read(
    client: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    # Within the byte limit but over the field's own limit: a validation error, not a 413.
    response = await client.post(ROUTE, json={**BODY, "customer_message": "z" * 30_000}, headers=route_key)
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ],
)
async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, route_key: dict[str, str], content_type: str | None
) -> None:
    headers = dict(route_key)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post(ROUTE, content=json.dumps(BODY).encode(), headers=headers)
    assert_problem(response, 415, "unsupported_media_type")


async def test_no_body_at_all_is_a_validation_error_naming_the_fields(
    client: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    response = await client.post(ROUTE, headers=route_key)
    assert_problem(response, 422, "validation_error")


async def test_json_with_a_charset_or_a_json_suffix_is_accepted(
    client: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        headers = {**route_key, "Content-Type": content_type}
        response = await client.post(ROUTE, content=json.dumps(BODY).encode(), headers=headers)
        assert response.status_code == 201, (content_type, response.text)


@pytest.mark.parametrize("depth", [100, 5_000, 30_000])
async def test_deeply_nested_json_is_refused_cleanly(
    client: httpx.AsyncClient, route_key: dict[str, str], depth: int
) -> None:
    nested = b'{"order_ref": "113-4567890-1234567", "items": ' + b"[" * depth + b"]" * depth + b"}"
    headers = {**route_key, "Content-Type": "application/json"}
    response = await client.post(ROUTE, content=nested, headers=headers)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] in ("malformed_body", "validation_error")


async def test_invalid_utf8_is_a_malformed_body(client: httpx.AsyncClient, route_key: dict[str, str]) -> None:
    body = b'{"order_ref": "113-4567890-1234567", "ticket_id": "\xff\xfe\xc3\x28"}'
    headers = {**route_key, "Content-Type": "application/json"}
    response = await client.post(ROUTE, content=body, headers=headers)
    assert_problem(response, 400, "malformed_body")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("order_ref", "1" * 300),
        ("ticket_id", "T" * 300),
        ("customer_message", "m" * 20_001),
        ("channel", "x" * 65),
        ("items", [{"sku": "KET-01", "quantity": 1}] * 501),
    ],
)
async def test_huge_values_are_validation_errors(
    client: httpx.AsyncClient, route_key: dict[str, str], field: str, value: object
) -> None:
    response = await client.post(ROUTE, json={**BODY, field: value}, headers=route_key)
    assert_problem(response, 422, "validation_error")
    assert str(value)[:100] not in response.text  # the offending input is not echoed back


async def test_unknown_fields_are_refused(client: httpx.AsyncClient, route_key: dict[str, str]) -> None:
    response = await client.post(ROUTE, json={**BODY, "refund_now": True}, headers=route_key)
    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"][0]["loc"] == ["body", "refund_now"]


@pytest.mark.parametrize(
    "key",
    [
        b"abc\r\nX-Injected: 1",
        b"abc\nSet-Cookie: a=b",
        b"with space",
        b"caf\xc3\xa9",
        b"\x00null",
        b"k" * 256,
        b"",
    ],
)
async def test_idempotency_keys_outside_visible_ascii_are_refused(
    app: FastAPI, route_key: dict[str, str], key: bytes, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Raw ASGI, as a lenient server might pass them on: httpx itself refuses to send such headers."""
    headers = [
        (b"content-type", b"application/json"),
        (b"authorization", route_key["Authorization"].encode()),
        (b"idempotency-key", key),
    ]
    body = json.dumps(BODY).encode()
    sent = await send_raw(app, raw_scope(ROUTE, headers), [{"type": "http.request", "body": body}])
    start = sent[0]
    assert start["status"] == 422
    answer = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert answer["code"] == "validation_error"
    for name, value in start["headers"]:
        assert b"\n" not in value
        assert name.lower() not in (b"x-injected", b"set-cookie")
    assert await stored(sessions) == 0


@pytest.mark.parametrize(
    ("scopes", "method", "path"),
    [
        ((Scope.read,), "POST", ROUTE),
        ((Scope.act,), "POST", ROUTE),
        ((Scope.act,), "GET", "/v1/decisions/0b0e8a9e-0000-4000-8000-000000000000"),
    ],
)
async def test_a_key_of_one_scope_cannot_use_another_scopes_endpoints(
    client: httpx.AsyncClient, make_key: MakeKey, scopes: tuple[Scope, ...], method: str, path: str
) -> None:
    response = await client.request(
        method, path, json=BODY if method == "POST" else None, headers=await make_key(*scopes)
    )
    assert_problem(response, 403, "forbidden")


async def test_guessed_decision_ids_are_404_like_any_unknown_one(
    client: httpx.AsyncClient, route_key: dict[str, str], make_key: MakeKey
) -> None:
    made = (await client.post(ROUTE, json=BODY, headers=route_key)).json()["decision_id"]
    reader = await make_key(Scope.read)
    real = uuid.UUID(made)
    guesses = [
        str(uuid.uuid4()),
        str(uuid.UUID(int=real.int ^ 1)),  # one bit away from a real one
        made.upper().replace("-", ""),  # the real one spelled differently: still the same UUID
        "..%2F..%2Fhealthz",  # an encoded traversal stays one path segment
        "%00",
        "1 OR 1=1",
        "0" * 64,
    ]
    for guess in guesses:
        response = await client.get(f"/v1/decisions/{guess}", headers=reader)
        if guess == made.upper().replace("-", ""):
            assert response.status_code == 200
            continue
        assert response.status_code in (404, 422), (guess, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_query_parameter_given_twice_is_refused_not_overridden(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    response = await client.get(
        "/v1/decisions?limit=1&channel=amazon_us&limit=200", headers=await make_key(Scope.read)
    )

    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"] == [
        {"loc": ["query", "limit"], "msg": "given more than once", "type": "repeated"}
    ]


@pytest.mark.parametrize("path", ["/v1/decisions", "/v1/outcomes/unmatched", "/v1/webhooks/events"])
async def test_a_nul_character_in_a_query_parameter_is_refused_at_the_door(
    client: httpx.AsyncClient, make_key: MakeKey, path: str
) -> None:
    # PostgreSQL refuses NUL in text: reaching the database, it was a 500.
    name = "channel" if path != "/v1/webhooks/events" else "topic"
    response = await client.get(f"{path}?{name}=amazon%00us", headers=await make_key(Scope.read))

    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"] == [
        {"loc": ["query", name], "msg": "NUL character", "type": "nul_character"}
    ]


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", ROUTE, b'{"order_ref": "113-4567890-1234567", "ticket_id": "a\\u0000b"}'),
        ("POST", ROUTE, b'{"order_ref": "113-4567890-1234567", "customer_message": "\\\\\\u0000"}'),
    ],
)
async def test_a_nul_character_in_a_json_body_is_refused_at_the_door(
    client: httpx.AsyncClient, make_key: MakeKey, method: str, url: str, body: bytes | None
) -> None:
    # PostgreSQL's text and JSON hold no NUL: stored, it would fail as a 500.
    headers = {**(await make_key(Scope.route, Scope.read)), "Content-Type": "application/json"}

    response = await client.request(method, url, content=body, headers=headers)

    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"][0]["type"] == "nul_character"


async def test_an_escaped_backslash_before_u0000_is_no_nul(
    client: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    body = (
        b'{"order_ref": "113-4567890-1234567", "ticket_id": "C:\\\\u0000", "as_of": "2026-12-03T15:00:00Z"}'
    )

    response = await client.post(
        ROUTE, content=body, headers={**route_key, "Content-Type": "application/json"}
    )

    assert response.status_code == 201, response.text
    assert response.json()["ticket_id"] == "C:\\u0000"


# --- Values the database or the calendar cannot take: 4xx, never 500 --------------------------


@pytest.fixture
async def answering(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the 500 a bug would answer, instead of the exception behind it."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as http:
        yield http


@pytest.mark.parametrize(
    "moments",
    [
        {"as_of": "0001-01-01T00:00:00Z"},
        {"as_of": "0001-01-01T00:00:00+05:00"},  # before the first moment Python has, in UTC
        {"as_of": "9999-12-31T23:59:59Z"},
        {"customer_contacted_at": "9999-12-31T23:59:59Z"},
        {"customer_contacted_at": "0001-01-01T00:00:00Z"},
    ],
)
async def test_moments_at_the_ends_of_the_calendar_are_validation_errors(
    answering: httpx.AsyncClient,
    route_key: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    moments: dict[str, str],
) -> None:
    response = await answering.post(ROUTE, json={**BODY, **moments}, headers=route_key)

    assert_problem(response, 422, "validation_error")
    [error] = response.json()["errors"]
    assert error["loc"] == ["body", *moments]
    assert error["msg"] == "Value error, must be between the years 1970 and 2999"
    assert await stored(sessions) == 0


@pytest.mark.parametrize(
    "query",
    ["created_after=0001-01-01T00:00:00%2B05:00", "created_before=9999-12-31T23:59:59-05:00"],
)
async def test_filters_at_the_ends_of_the_calendar_are_validation_errors(
    answering: httpx.AsyncClient, make_key: MakeKey, query: str
) -> None:
    response = await answering.get(f"/v1/decisions?{query}", headers=await make_key(Scope.read))
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "field",
    [
        {"ticket_id": "T-88213\u0000"},
        {"order_ref": "\u0000113-4567890-1234567"},
        {"items": [{"sku": "KET-01\u0000"}]},
        {"customer_message": "never stored, refused all the same\u0000"},
    ],
)
async def test_a_nul_character_in_a_body_is_a_validation_error(
    answering: httpx.AsyncClient,
    route_key: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    field: dict[str, Any],
) -> None:
    response = await answering.post(ROUTE, json={**BODY, **field}, headers=route_key)

    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"][0]["type"] == "nul_character"
    assert "NUL" in response.json()["detail"]
    assert await stored(sessions) == 0


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/decisions?ticket_id=T-1%00", "ticket_id"),
        ("/v1/decisions?order_ref=%00", "order_ref"),
        ("/v1/decisions?queue=returns%00", "queue"),
        ("/v1/decisions?channel=amazon_us%00", "channel"),
        ("/v1/webhooks/events?topic=returns%00", "topic"),
        ("/v1/stats/decisions?group_by=channel&created_after=%00", "created_after"),
    ],
)
async def test_a_nul_character_in_a_query_filter_is_a_validation_error(
    answering: httpx.AsyncClient, make_key: MakeKey, path: str, name: str
) -> None:
    response = await answering.get(path, headers=await make_key(Scope.read))

    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"] == [
        {"loc": ["query", name], "msg": "NUL character", "type": "nul_character"}
    ]


async def test_a_client_that_leaves_mid_body_is_no_500_in_the_access_log_or_the_metrics(
    app: FastAPI, route_key: dict[str, str], log_lines: io.StringIO
) -> None:
    def answered(status: str) -> float:
        return sum(
            sample.value
            for metric in REGISTRY.collect()
            if metric.name == "returns_router_http_requests"
            for sample in metric.samples
            if sample.name.endswith("_total") and sample.labels["status"] == status
        )

    messages = [
        {"type": "http.request", "body": b'{"order_ref": "113-45', "more_body": True},
        {"type": "http.disconnect"},
    ]
    headers = [
        (b"content-type", b"application/json"),
        (b"authorization", route_key["Authorization"].encode()),
    ]
    errors_before, gone_before = answered("500"), answered("499")

    sent = await send_raw(app, raw_scope(ROUTE, headers), messages)

    assert sent == []  # nobody to answer
    [access] = [
        json.loads(line) for line in log_lines.getvalue().splitlines() if '"event": "request"' in line
    ]
    assert access["status"] == 499
    assert (answered("500"), answered("499")) == (errors_before, gone_before + 1)
