"""`POST /v1/returns/route` through the whole pipeline, on the sandbox channels and a real database."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.db.tables import Decision as DecisionRow
from app.services.api_keys import Scope
from tests.conftest import MakeKey

AMAZON_MFN = "113-4567890-1234567"
SHOPIFY_ON = "#1001"
SHOPIFY_ON_GID = "gid://shopify/Order/450789469"


@pytest.fixture
async def route_key(make_key: MakeKey) -> dict[str, str]:
    return await make_key(Scope.route)


async def route(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/v1/returns/route", json=body, headers=headers)


async def test_amazon_order_is_a_compliance_return_under_amazons_policy(
    client: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    response = await route(
        client,
        route_key,
        order_ref=AMAZON_MFN,
        reason="damaged",
        ticket_id="T-88213",
        items=[{"sku": "KET-01", "quantity": 1}],
        customer_contacted_at="2026-12-03T14:40:00Z",
        as_of="2026-12-03T15:00:00Z",
    )
    assert response.status_code == 201, response.text
    decision = response.json()
    assert decision["channel"] == "amazon_us"
    assert decision["platform"] == "amazon"
    assert decision["classification"] == "compliance_return"
    assert decision["sandbox"] is True
    assert decision["ticket_id"] == "T-88213"
    assert decision["order"]["fulfillment"] == "merchant"
    assert decision["order"]["ship_to_region"] is None
    assert decision["order"]["total"] == {"amount": "59.99", "currency": "USD"}
    policy = decision["policy"]
    assert (policy["id"], policy["owner"], policy["eligible"]) == ("amazon-us", "platform", True)
    assert policy["return_window_ends"] == "2027-01-31"  # placed in the 2026 holiday period
    assert policy["resolution_options"] == ["refund"]
    assert policy["refund_trigger"] == "carrier_scan"
    assert policy["restocking_fee"]["allowed"] is False
    assert policy["returned_value"] == {"amount": "59.99", "currency": "USD"}
    assert decision["template"]["id"].startswith("amazon-us/")
    assert decision["template"]["locale"] == "en-US"
    assert AMAZON_MFN in decision["template"]["body"]
    assert decision["queue"]["name"] == "amazon-compliance"
    assert decision["queue"]["priority"] == 2
    assert decision["queue"]["sla_due_at"] == "2026-12-04T14:40:00Z"
    assert decision["queue"]["skills"] == ["amazon-policy"]
    assert any(step["rule"].startswith("amazon.") for step in decision["explanation"])


async def test_shopify_order_is_a_retention_refund_under_the_merchant_policy(
    client: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    response = await route(
        client, route_key, order_ref=SHOPIFY_ON, reason="size_or_fit", as_of="2026-11-20T15:00:00Z"
    )
    assert response.status_code == 201, response.text
    decision = response.json()
    assert (decision["channel"], decision["platform"]) == ("shopify_ca", "shopify")
    assert decision["classification"] == "retention_refund"
    assert decision["order"]["ship_to_region"] == "ON"
    assert decision["order"]["fulfillment"] == "shopify"
    policy = decision["policy"]
    assert (policy["id"], policy["owner"], policy["eligible"]) == ("shopify-ca-default", "merchant", True)
    assert policy["resolution_options"] == ["exchange", "store_credit", "refund"]
    assert policy["store_credit_bonus_percent"] == "10"
    assert policy["restocking_fee"]["allowed"] is True  # customer fault: a refund carries 15%
    assert decision["template"]["locale"] == "en-CA"
    assert decision["queue"]["name"] == "shopify-retention"
    assert decision["queue"]["sla_due_at"] == "2026-11-22T15:00:00Z"


async def test_stored_decision_reads_back_as_answered(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    route_headers = await make_key(Scope.route)
    created = (await route(client, route_headers, order_ref=SHOPIFY_ON, as_of="2026-11-20T15:00:00Z")).json()

    read = await client.get(f"/v1/decisions/{created['decision_id']}", headers=await make_key(Scope.read))

    assert read.status_code == 200
    assert read.json() == {**created, "actions": [], "shopify_returns": [], "outcome": None}


@pytest.mark.parametrize("order_ref", ["#1001", "1001", " 1001 ", "450789469", SHOPIFY_ON_GID])
async def test_every_kind_of_shopify_reference_finds_the_order(
    client: httpx.AsyncClient, route_key: dict[str, str], order_ref: str
) -> None:
    response = await route(client, route_key, order_ref=order_ref)
    assert response.status_code == 201, response.text
    assert response.json()["order"]["order_ref"] == "#1001"


async def test_channel_is_detected_from_the_reference(
    client: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    amazon = await route(client, route_key, order_ref=AMAZON_MFN)
    shopify = await route(client, route_key, order_ref=SHOPIFY_ON_GID)
    assert amazon.json()["channel"] == "amazon_us"
    assert shopify.json()["channel"] == "shopify_ca"


@pytest.mark.parametrize(
    ("order_ref", "channel"),
    [(AMAZON_MFN, "shopify_ca"), (SHOPIFY_ON, "amazon_us"), (SHOPIFY_ON_GID, "amazon_us")],
)
async def test_a_channel_that_contradicts_the_order_is_a_conflict(
    client: httpx.AsyncClient, route_key: dict[str, str], order_ref: str, channel: str
) -> None:
    response = await route(client, route_key, order_ref=order_ref, channel=channel)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "channel_mismatch"


async def test_an_agreeing_channel_is_accepted(client: httpx.AsyncClient, route_key: dict[str, str]) -> None:
    response = await route(client, route_key, order_ref=AMAZON_MFN, channel="amazon_us")
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"order_ref": "113-0000000-0000000"}, 404, "order_not_found"),
        ({"order_ref": "#9999"}, 404, "order_not_found"),
        ({"order_ref": "113-4567890-1234567", "channel": "ebay_de"}, 422, "unknown_channel"),
        ({"order_ref": "not an order"}, 422, "unrecognised_order_ref"),
        ({"order_ref": AMAZON_MFN, "items": [{"sku": "NOPE-1"}]}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        ({"order_ref": ""}, 422, "validation_error"),
        ({"order_ref": AMAZON_MFN, "reason": "bored"}, 422, "validation_error"),
        ({"order_ref": AMAZON_MFN, "locale": "de-DE"}, 422, "validation_error"),
        ({"order_ref": AMAZON_MFN, "as_of": "2026-12-03T15:00:00"}, 422, "validation_error"),
        ({"order_ref": AMAZON_MFN, "surprise": 1}, 422, "validation_error"),
        ({"order_ref": AMAZON_MFN, "items": [{"sku": "KET-01", "quantity": 0}]}, 422, "validation_error"),
        ({"order_ref": ["113-4567890-1234567"]}, 422, "validation_error"),
    ],
)
async def test_errors_are_problem_json_with_a_stable_code(
    client: httpx.AsyncClient, route_key: dict[str, str], body: dict[str, Any], status: int, code: str
) -> None:
    response = await client.post("/v1/returns/route", json=body, headers=route_key)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["type"].endswith(code)
    assert problem["title"]
    assert problem["detail"]


async def test_field_errors_say_where_without_echoing_input(
    client: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    secret_looking = "jane.doe@example.com"
    response = await route(client, route_key, order_ref=AMAZON_MFN, reason=secret_looking)
    problem = response.json()
    assert problem["errors"][0]["loc"] == ["body", "reason"]
    assert secret_looking not in response.text


async def test_a_body_that_is_not_json_is_a_400(client: httpx.AsyncClient, route_key: dict[str, str]) -> None:
    response = await client.post(
        "/v1/returns/route",
        content=b'{"order_ref": ',
        headers={**route_key, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_body"


async def test_unknown_paths_and_methods_are_problem_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nowhere")
    wrong_method = await client.get("/v1/returns/route")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")
    assert wrong_method.headers["content-type"] == "application/problem+json"


async def test_each_request_stores_one_decision_without_the_customers_message(
    client: httpx.AsyncClient, route_key: dict[str, str], sessions: Any
) -> None:
    message = "Hi, I'm Jane Doe at 12 Rue Saint-Denis, call me at 514-555-0199"
    await route(client, route_key, order_ref=AMAZON_MFN, customer_message=message)
    await route(client, route_key, order_ref=AMAZON_MFN, customer_message=message)

    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(DecisionRow))
        rows = (await session.scalars(select(DecisionRow))).all()
    assert count == 2
    for row in rows:
        assert "customer_message" not in row.request
        assert message not in str(row.answer) + str(row.request) + str(row.order_snapshot)
        assert row.policy_id == "amazon-us"
        assert row.policy_version == row.answer["policy"]["version"]


async def test_an_order_not_shipped_is_a_decision_not_an_error(
    client: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    response = await route(client, route_key, order_ref="#1004", as_of="2026-11-26T12:00:00Z")
    assert response.status_code == 201
    policy = response.json()["policy"]
    assert policy["eligible"] is False
    assert policy["return_window_ends"] is None
    assert policy["resolution_options"] == []
