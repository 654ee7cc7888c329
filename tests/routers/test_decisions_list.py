"""`GET /v1/decisions` and `GET /v1/stats/decisions`: filters, pages, counts and who sees what."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.decisions import PagePosition
from app.db.tables import Decision as DecisionRow
from app.services.api_keys import Scope
from app.services.decision_pages import encode_cursor
from tests.conftest import MakeKey

AMAZON_IN_WINDOW = "113-4567890-1234567"
AMAZON_OUT_OF_WINDOW = "114-2233445-5667788"
SHOPIFY = "#1001"


async def route(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/returns/route", json=body, headers=headers)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def list_ids(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[str]:
    response = await client.get("/v1/decisions", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["decision_id"] for item in response.json()["items"]]


async def every_page(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/v1/decisions", params=query, headers=headers)).json()
        pages.append([item["decision_id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100


@pytest.fixture
async def reader(make_key: MakeKey) -> dict[str, str]:
    return await make_key(Scope.read)


@pytest.fixture
async def router_key(make_key: MakeKey) -> dict[str, str]:
    return await make_key(Scope.route)


async def test_newest_first_with_each_filter(
    client: httpx.AsyncClient, reader: dict[str, str], router_key: dict[str, str]
) -> None:
    amazon = await route(client, router_key, order_ref=AMAZON_IN_WINDOW, ticket_id="T-1")
    late = await route(client, router_key, order_ref=AMAZON_OUT_OF_WINDOW, ticket_id="T-2")
    shopify = await route(client, router_key, order_ref=SHOPIFY, as_of="2026-11-20T15:00:00Z")
    ids = {name: d["decision_id"] for name, d in (("amazon", amazon), ("late", late), ("shopify", shopify))}
    assert late["policy"]["eligible"] is False
    assert amazon["policy"]["eligible"] is True

    assert await list_ids(client, reader) == [ids["shopify"], ids["late"], ids["amazon"]]
    assert await list_ids(client, reader, channel="amazon_us") == [ids["late"], ids["amazon"]]
    assert await list_ids(client, reader, classification="retention_refund") == [ids["shopify"]]
    assert await list_ids(client, reader, queue=shopify["queue"]["name"]) == [ids["shopify"]]
    assert await list_ids(client, reader, eligible="false") == [ids["late"]]
    assert await list_ids(client, reader, eligible="true") == [ids["shopify"], ids["amazon"]]
    assert await list_ids(client, reader, ticket_id="T-2") == [ids["late"]]
    assert await list_ids(client, reader, order_ref="#1001") == [ids["shopify"]]
    assert await list_ids(client, reader, channel="amazon_us", eligible="true") == [ids["amazon"]]
    assert await list_ids(client, reader, channel="ebay_de") == []
    # created_after is inclusive, created_before exclusive.
    middle = late["created_at"]
    assert await list_ids(client, reader, created_after=middle) == [ids["shopify"], ids["late"]]
    assert await list_ids(client, reader, created_before=middle) == [ids["amazon"]]


async def test_items_are_the_decisions_as_answered(
    client: httpx.AsyncClient, reader: dict[str, str], router_key: dict[str, str]
) -> None:
    created = await route(client, router_key, order_ref=SHOPIFY, as_of="2026-11-20T15:00:00Z")
    response = await client.get("/v1/decisions", headers=reader)
    assert response.json() == {"items": [created], "next_cursor": None}


async def test_pages_return_every_decision_once_while_new_ones_are_made(
    client: httpx.AsyncClient, reader: dict[str, str], router_key: dict[str, str]
) -> None:
    existing = [(await route(client, router_key, order_ref=SHOPIFY))["decision_id"] for _ in range(11)]
    seen: list[str] = []
    cursor = None
    made_meanwhile: list[str] = []
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/v1/decisions", params=params, headers=reader)).json()
        seen += [item["decision_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        made_meanwhile.append((await route(client, router_key, order_ref=AMAZON_IN_WINDOW))["decision_id"])

    assert seen == list(reversed(existing))
    assert len(made_meanwhile) == 3
    assert (await list_ids(client, reader, limit=3)) == list(reversed(made_meanwhile))


async def test_decisions_made_at_the_same_instant_are_paged_by_id(
    client: httpx.AsyncClient,
    reader: dict[str, str],
    router_key: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    original = await route(client, router_key, order_ref=SHOPIFY)
    async with sessions.begin() as session:
        row = await session.scalar(select(DecisionRow))
        assert row is not None
        for _ in range(6):
            session.add(_clone(row, created_at=row.created_at))
    pages = await every_page(client, reader, limit=2)
    flat = [decision_id for page in pages for decision_id in page]
    assert len(flat) == len(set(flat)) == 7
    assert original["decision_id"] in flat
    assert [len(page) for page in pages] == [2, 2, 2, 1]


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%",
        "ZDF8bm90LWEtZGF0ZXx4",  # d1|not-a-date|x
        # Fixed ids: each xdist worker must collect the same test names.
        encode_cursor(PagePosition(datetime(2026, 11, 26), uuid.UUID(int=1))),  # a naive time
        encode_cursor(PagePosition(datetime(2026, 11, 26, tzinfo=UTC), uuid.UUID(int=2))).replace(
            "ZDF", "ZDI"
        ),
    ],
)
async def test_a_cursor_the_service_did_not_give_is_422(
    client: httpx.AsyncClient, reader: dict[str, str], cursor: str
) -> None:
    response = await client.get("/v1/decisions", params={"cursor": cursor}, headers=reader)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"eligible": "perhaps"},
        {"classification": "refund"},
        {"created_after": "2026-11-20T10:00:00"},  # no offset
        {"created_before": "yesterday"},
    ],
)
async def test_bad_filters_are_422(client: httpx.AsyncClient, reader: dict[str, str], params: Any) -> None:
    response = await client.get("/v1/decisions", params=params, headers=reader)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_a_route_key_lists_and_counts_only_the_decisions_it_made(
    client: httpx.AsyncClient, make_key: MakeKey, reader: dict[str, str]
) -> None:
    mine, theirs = await make_key(Scope.route), await make_key(Scope.route)
    my_decision = await route(client, mine, order_ref=SHOPIFY)
    await route(client, theirs, order_ref=SHOPIFY)

    assert await list_ids(client, mine) == [my_decision["decision_id"]]
    assert len(await list_ids(client, reader)) == 2
    stats = await client.get("/v1/stats/decisions", params={"group_by": "channel"}, headers=mine)
    assert [group["count"] for group in stats.json()["groups"]] == [1]
    assert (await client.get("/v1/decisions", headers=await make_key(Scope.act))).status_code == 403
    assert (await client.get("/v1/decisions")).status_code == 401


async def test_stats_count_eligible_and_sla_breached_decisions_per_group(
    client: httpx.AsyncClient, reader: dict[str, str], router_key: dict[str, str]
) -> None:
    await route(client, router_key, order_ref=AMAZON_IN_WINDOW)
    await route(client, router_key, order_ref=AMAZON_OUT_OF_WINDOW)
    # The customer wrote three days before the return was routed: the 24-hour deadline had passed.
    waited = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    await route(client, router_key, order_ref=AMAZON_IN_WINDOW, customer_contacted_at=waited)
    await route(client, router_key, order_ref=SHOPIFY)

    async def groups(**params: Any) -> list[dict[str, Any]]:
        response = await client.get("/v1/stats/decisions", params=params, headers=reader)
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()["groups"]
        return result

    assert await groups(group_by="channel") == [
        {"key": "amazon_us", "count": 3, "eligible": 2, "sla_breached": 1},
        {"key": "shopify_ca", "count": 1, "eligible": 1, "sla_breached": 0},
    ]
    assert await groups(group_by="classification") == [
        {"key": "compliance_return", "count": 3, "eligible": 2, "sla_breached": 1},
        {"key": "retention_refund", "count": 1, "eligible": 1, "sla_breached": 0},
    ]
    assert [g["key"] for g in await groups(group_by="queue")] == ["amazon-compliance", "shopify-retention"]
    assert await groups(group_by="reason") == [{"key": "other", "count": 4, "eligible": 3, "sla_breached": 1}]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await groups(group_by="channel", created_after=future) == []


async def test_stats_by_utc_day(
    client: httpx.AsyncClient,
    reader: dict[str, str],
    router_key: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await route(client, router_key, order_ref=SHOPIFY)
    # 23:30 in Toronto on the 24th is the 25th in UTC.
    toronto_evening = datetime.fromisoformat("2026-11-24T23:30:00-05:00")
    async with sessions.begin() as session:
        row = await session.scalar(select(DecisionRow))
        assert row is not None
        session.add(_clone(row, created_at=toronto_evening))
        session.add(_clone(row, created_at=toronto_evening - timedelta(hours=1)))
        session.add(_clone(row, created_at=datetime(2026, 11, 23, 0, 0, tzinfo=UTC)))

    response = await client.get("/v1/stats/decisions", params={"group_by": "day"}, headers=reader)
    today = datetime.now(UTC).date().isoformat()
    assert [(g["key"], g["count"]) for g in response.json()["groups"]] == [
        ("2026-11-23", 1),
        ("2026-11-25", 2),
        (today, 1),
    ]
    bounded = await client.get(
        "/v1/stats/decisions",
        params={
            "group_by": "day",
            "created_after": "2026-11-23T00:00:00Z",
            "created_before": "2026-11-25T04:30:00Z",
        },
        headers=reader,
    )
    bounded_days = [(g["key"], g["count"]) for g in bounded.json()["groups"]]
    assert bounded_days == [("2026-11-23", 1), ("2026-11-25", 1)]


async def test_stats_need_a_known_grouping(client: httpx.AsyncClient, reader: dict[str, str]) -> None:
    for params in ({}, {"group_by": "ticket_id"}):
        response = await client.get("/v1/stats/decisions", params=params, headers=reader)
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"


def _clone(row: DecisionRow, created_at: datetime) -> DecisionRow:
    decision_id = uuid.uuid4()
    return DecisionRow(
        **{
            column: getattr(row, column)
            for column in DecisionRow.__table__.columns.keys()
            if column not in {"id", "created_at", "answer"}
        },
        id=decision_id,
        created_at=created_at,
        answer={**row.answer, "decision_id": str(decision_id), "created_at": created_at.isoformat()},
    )
