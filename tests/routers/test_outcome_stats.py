"""`GET /v1/stats/outcomes`: counts, rates and money per group, a decision counted in each of its rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from app.runtime import Runtime
from app.services import amazon_import
from app.services.api_keys import Scope
from tests.conftest import MakeKey

REPORT = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "published"
    / "amazon"
    / "handmade"
    / "returns-report.tsv"
)


@pytest.fixture
async def reader(make_key: MakeKey) -> dict[str, str]:
    return await make_key(Scope.route, Scope.read)


async def groups(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/stats/outcomes", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return {group["key"]: group for group in response.json()["groups"]}


async def test_outcome_stats_by_channel_policy_rule_and_day(
    client: httpx.AsyncClient, reader: dict[str, str], runtime: Runtime
) -> None:
    for order_ref in ("113-4567890-1234567", "114-2233445-5667788", "#1001"):
        body = {"order_ref": order_ref, "reason": "damaged", "as_of": "2026-12-01T15:00:00Z"}
        assert (await client.post("/v1/returns/route", json=body, headers=reader)).status_code == 201
    await amazon_import.import_document(
        runtime.database,
        channel="amazon_us",
        currency="USD",
        content=REPORT.read_bytes(),
        compression=None,
        report="returns.tsv",
        source="file",
    )

    by_channel = await groups(client, reader, group_by="channel")
    amazon = by_channel["amazon_us"]
    assert {
        k: amazon[k] for k in ("decisions", "resolved", "retained", "refunded", "returnless", "claims")
    } == {
        "decisions": 2,
        "resolved": 2,
        "retained": 0,
        "refunded": 1,
        "returnless": 0,
        "claims": 1,
    }
    assert (amazon["retention_rate"], amazon["claim_rate"]) == ("0", "0.5")
    assert amazon["refunded_amount"] == {"amount": "59.99", "currency": "USD"}
    assert amazon["retained_amount"] == {"amount": "0.00", "currency": "USD"}
    shopify = by_channel["shopify_ca"]
    assert (shopify["decisions"], shopify["resolved"], shopify["refunded_amount"]) == (
        1,
        0,
        {"amount": "0.00", "currency": "CAD"},
    )

    by_rule = await groups(client, reader, group_by="rule")
    # Both Amazon decisions went through the window rule; only 113's through the holiday window.
    assert (by_rule["amazon.window"]["decisions"], by_rule["amazon.window"]["claims"]) == (2, 1)
    assert (by_rule["amazon.holiday_window"]["decisions"], by_rule["amazon.holiday_window"]["refunded"]) == (
        1,
        1,
    )
    # Every decision names `locale`: its group mixes currencies, so money is given per currency.
    locale = by_rule["locale"]
    assert locale["decisions"] == 3
    assert locale["refunded_amount"] is None
    assert locale["refunded_amounts"] == [
        {"amount": "0.00", "currency": "CAD"},
        {"amount": "59.99", "currency": "USD"},
    ]

    by_policy = await groups(client, reader, group_by="policy")
    assert set(by_policy) == {"amazon-us@2026.11", "shopify-ca-default@2026.11"}
    [day] = (await groups(client, reader, group_by="day")).values()
    assert day["decisions"] == 3
    assert await groups(client, reader, group_by="channel", since="2999-01-01T00:00:00Z") == {}


async def test_outcome_stats_need_the_read_scope_and_a_known_grouping(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    router_only = await make_key(Scope.route)
    response = await client.get("/v1/stats/outcomes", params={"group_by": "channel"}, headers=router_only)
    assert response.status_code == 403
    reader = await make_key(Scope.read)
    response = await client.get("/v1/stats/outcomes", params={"group_by": "ticket"}, headers=reader)
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
