"""Exact marketplaces: an Amazon order is decided under the channel of its own marketplace, through the
API, on the sandbox seller account (which holds orders from Amazon.com, .ca, .com.mx and .com.br) and on
a live one (a local stand-in), where channels with the same credentials are one seller account."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.connectors.amazon_search import OrderSearch
from app.connectors.ratelimit import LocalBuckets
from app.main import create_app
from app.runtime import Runtime
from app.services.api_keys import Scope
from app.services.mirror import seller_accounts
from app.services.mirror_sync import MirrorSync, Step
from app.settings import Settings
from tests.conftest import MakeKey
from tests.connectors.amazon_standin import AmazonStandIn
from tests.connectors.conftest import FIXTURES, PUBLISHED

US = "113-4567890-1234567"  # Amazon.com, seller-fulfilled, placed 2026-11-20
CA = "701-4455667-1234501"  # Amazon.ca, seller-fulfilled, placed 2026-11-18, delivered 2026-11-23
CA_FBA = "702-5566778-2345602"  # Amazon.ca, FBA, delivered 2026-10-06
CA_UNSHIPPED = "703-6677889-3456703"
CA_PARTIAL = "704-7788990-4567804"  # Amazon.ca: no product.price, no fulfillment.fulfilledBy
MX = "702-1234567-5678905"  # Amazon.com.mx
BR = "701-9876543-6789006"  # Amazon.com.br
AS_OF = "2026-11-26T15:00:00Z"
WITH_AMAZON_CA = {"channel_amazon_ca_marketplace_id": "A2EUQ1WTGCTBG2"}


@pytest.fixture(scope="module")
async def na_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The test settings with an Amazon.ca channel beside Amazon.com, both on the sandbox."""
    app = create_app(settings.model_copy(update={"channel_variables": WITH_AMAZON_CA}))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def na(na_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=na_app), base_url="http://r.test") as http:
        yield http


@pytest.fixture
async def route_key(make_key: MakeKey) -> dict[str, str]:
    return await make_key(Scope.route)


async def route(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/v1/returns/route", json={"as_of": AS_OF, **body}, headers=headers)


@pytest.mark.parametrize(
    ("order_ref", "channel", "policy", "currency", "locale"),
    [(US, "amazon_us", "amazon-us", "USD", "en-US"), (CA, "amazon_ca", "amazon-ca", "CAD", "en-CA")],
)
async def test_each_order_is_decided_under_its_marketplaces_channel(
    na: httpx.AsyncClient,
    route_key: dict[str, str],
    order_ref: str,
    channel: str,
    policy: str,
    currency: str,
    locale: str,
) -> None:
    response = await route(na, route_key, order_ref=order_ref, reason="damaged")

    assert response.status_code == 201, response.text
    decision = response.json()
    assert (decision["channel"], decision["policy"]["id"], decision["order"]["currency"]) == (
        channel,
        policy,
        currency,
    )
    assert (decision["template"]["locale"], decision["template"]["id"]) == (
        locale,
        f"{policy}/damaged/{locale}",
    )
    assert decision["classification"] == "compliance_return"
    assert (decision["queue"]["name"], decision["queue"]["skills"]) == (
        "amazon-compliance",
        ["amazon-policy"],
    )
    assert decision["policy"]["owner"] == "platform"
    assert decision["policy"]["resolution_options"] == ["refund"]


async def test_an_amazon_ca_decision_follows_amazon_ca_s_rules(
    na: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    damaged = (await route(na, route_key, order_ref=CA, reason="damaged")).json()
    unwanted = (await route(na, route_key, order_ref=CA, reason="no_longer_needed")).json()

    policy = damaged["policy"]
    assert policy["return_window_ends"] == "2027-01-31"  # placed in the holiday period
    assert policy["refund_trigger"] == "return_received"  # no prepaid-label program on Amazon.ca
    assert policy["returned_value"] == {"amount": "89.99", "currency": "CAD"}
    assert (
        "upload a prepaid return label in Manage Returns (Amazon.ca's default label is not prepaid)"
        in (policy["must"])
    )
    steps = {step["rule"]: step["result"] for step in damaged["explanation"]}
    assert steps["amazon.return_label"] == (
        "Amazon.ca's default label is not prepaid: on a seller-fault return the seller uploads a prepaid "
        "label; the return address must be in CA"
    )
    assert steps["locale"] == "en-CA: Amazon.ca's language (the buyer's province is not known)"
    assert "prepaid return label" in damaged["template"]["body"]
    assert (policy["return_shipping_paid_by"], unwanted["policy"]["return_shipping_paid_by"]) == (
        "seller",
        "customer",
    )
    assert (
        "the buyer pays the return shipping"
        in {s["rule"]: s["result"] for s in unwanted["explanation"]}["amazon.return_label"]
    )
    assert "return shipping is at your cost" in unwanted["template"]["body"]
    assert not any("prepaid return label in Manage" in must for must in unwanted["policy"]["must"])


async def test_an_amazon_ca_reply_is_in_french_when_asked(
    na: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    response = await route(na, route_key, order_ref=CA, reason="wrong_item", locale="fr-CA")

    decision = response.json()
    assert (decision["template"]["id"], decision["template"]["locale"]) == (
        "amazon-ca/wrong_item/fr-CA",
        "fr-CA",
    )
    assert decision["template"]["subject"] == f"Votre retour pour la commande {CA}"
    assert "31 janvier 2027" in decision["template"]["body"]
    assert decision["queue"]["skills"] == ["amazon-policy", "fr"]


async def test_amazon_ca_late_fba_and_unshipped(na: httpx.AsyncClient, route_key: dict[str, str]) -> None:
    late = (await route(na, route_key, order_ref=CA_FBA, reason="size_or_fit")).json()
    unshipped = (await route(na, route_key, order_ref=CA_UNSHIPPED, reason="damaged")).json()

    assert late["policy"]["eligible"] is True
    assert late["policy"]["return_window_ends"] == "2026-11-05"
    assert late["policy"]["restocking_fee"]["allowed"] is False
    assert late["policy"]["refund_trigger"] == "amazon"
    assert late["template"]["id"] == "amazon-ca/late/en-CA"
    assert "amazon.return_label" not in {step["rule"] for step in late["explanation"]}  # Amazon's own
    assert (unshipped["policy"]["eligible"], unshipped["template"]["id"]) == (
        False,
        "amazon-ca/not_shipped/en-CA",
    )


async def test_what_the_order_lacks_is_explained_in_the_decision(
    na: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    response = await route(na, route_key, order_ref=CA_PARTIAL, reason="damaged")

    assert response.status_code == 201, response.text
    decision = response.json()
    missing = [step["result"] for step in decision["explanation"] if step["rule"] == "order.missing"]
    assert missing == [
        "fulfillment.fulfilledBy: not given; taken as seller-fulfilled (by default)",
        "item 60311298437704: product.price not given; "
        "unit price 12.99 CAD from its proceeds (ITEM 38.97 / 3)",
    ]
    assert decision["explanation"][0]["rule"] == "order.missing"
    assert decision["order"]["lines"][0]["unit_price"] == {"amount": "12.99", "currency": "CAD"}


@pytest.mark.parametrize(("order_ref", "marketplace"), [(MX, "A1AM78C64UM0Y8"), (BR, "A2Q3Y263D00KWC")])
async def test_an_order_from_a_marketplace_without_a_channel_is_unsupported(
    na: httpx.AsyncClient, route_key: dict[str, str], order_ref: str, marketplace: str
) -> None:
    response = await route(na, route_key, order_ref=order_ref, reason="damaged")

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "unsupported_marketplace"
    assert problem["marketplace_id"] == marketplace
    assert f"marketplace {marketplace}" in problem["detail"]


async def test_without_an_amazon_ca_channel_a_canadian_order_is_never_decided_as_a_us_one(
    client: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    response = await route(client, route_key, order_ref=CA, reason="damaged")

    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "unsupported_marketplace"
    assert "marketplace A2EUQ1WTGCTBG2 (Amazon.ca), which no channel is configured for" in problem["detail"]


async def test_naming_another_marketplaces_channel_is_a_mismatch(
    na: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    response = await route(na, route_key, order_ref=CA, reason="damaged", channel="amazon_us")

    assert response.status_code == 409
    assert response.json()["code"] == "channel_mismatch"
    assert "belongs to channel amazon_ca" in response.json()["detail"]


# --- Live: one seller account, two marketplaces ---------------------------------------------------


@pytest.fixture
def standin() -> Iterator[AmazonStandIn]:
    orders = {
        order_id: json.loads((FIXTURES / folder / f"{order_id}.json").read_text(encoding="utf-8"))
        for folder, order_id in (("amazon_us", US), ("amazon_ca", CA), ("amazon_mx", MX))
    }
    with AmazonStandIn(orders) as server:
        yield server


@pytest.fixture
async def one_account(
    settings: Settings, standin: AmazonStandIn
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """amazon_us and amazon_ca with the same credentials: one seller account."""
    shared = {
        "lwa_client_id": "amzn1.application-oa2-client.test",
        "lwa_client_secret": "client-secret",
        "refresh_token": "Atzr|seller",
        "endpoint": standin.url,
        "lwa_token_url": standin.token_url,
    }
    variables = {
        **{f"channel_amazon_us_{name}": value for name, value in shared.items()},
        **{f"channel_amazon_ca_{name}": value for name, value in shared.items()},
        **WITH_AMAZON_CA,
    }
    app = create_app(settings.model_copy(update={"channel_variables": variables}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://r.test"
        ) as http:
            yield http, app.state.runtime


async def test_channels_with_the_same_credentials_share_one_token_and_one_answer(
    one_account: tuple[httpx.AsyncClient, Runtime], route_key: dict[str, str], standin: AmazonStandIn
) -> None:
    client, runtime = one_account
    assert runtime.connectors.source("amazon_us") is runtime.connectors.source("amazon_ca")

    found = await route(client, route_key, order_ref=CA, reason="damaged")
    named = await route(client, route_key, order_ref=CA, reason="damaged", channel="amazon_ca")
    wrong = await route(client, route_key, order_ref=CA, reason="damaged", channel="amazon_us")
    us = await route(client, route_key, order_ref=US, reason="damaged", channel="amazon_us")
    mx = await route(client, route_key, order_ref=MX, reason="damaged")

    assert (found.status_code, found.json()["channel"], found.json()["sandbox"]) == (201, "amazon_ca", False)
    assert (named.status_code, named.json()["policy"]["id"]) == (201, "amazon-ca")
    assert (wrong.status_code, wrong.json()["code"]) == (409, "channel_mismatch")
    assert (us.status_code, us.json()["channel"]) == (201, "amazon_us")
    assert (mx.status_code, mx.json()["code"]) == (422, "unsupported_marketplace")
    # One getOrder per order, whichever channel asked; one access token for the account.
    assert sorted(order_id for _, order_id in standin.calls) == sorted([CA, US, MX])
    assert standin.token_calls == 1


# --- The orders Amazon publishes -------------------------------------------------------------------


def _published_get_order_answers() -> dict[str, dict[str, Any]]:
    answers = {}
    for path in sorted((PUBLISHED / "amazon").glob("getOrder.*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        answer = body["response"] if ".sandbox." in path.name else body
        if "order" in answer:
            answers[answer["order"]["orderId"]] = answer
    return answers


async def test_every_published_order_is_decided_under_its_marketplace_or_refused_never_a_502(
    settings: Settings, route_key: dict[str, str]
) -> None:
    answers = _published_get_order_answers()
    expected = {
        "114-9876543-1234567": (201, "amazon_us"),  # Amazon.com, in-store pick-up, unshipped
        "171-9876543-2109876": (422, "A2Q3Y263D00KWC"),  # Amazon.com.br
        "202-1234567-8901234": (422, "A1F83G8C2ARO7P"),  # Amazon.co.uk: another region's account
        "028-1234567-8901234": (422, "A33AVAJ2PDY3EV"),  # Amazon.com.tr
    }
    assert set(answers) == set(expected)
    with AmazonStandIn(answers) as server:
        variables = {
            **WITH_AMAZON_CA,
            **{
                f"channel_{channel}_{name}": value
                for channel in ("amazon_us", "amazon_ca")
                for name, value in {
                    "lwa_client_id": "amzn1.application-oa2-client.test",
                    "lwa_client_secret": "client-secret",
                    "refresh_token": "Atzr|seller",
                    "endpoint": server.url,
                    "lwa_token_url": server.token_url,
                }.items()
            },
        }
        app = create_app(settings.model_copy(update={"channel_variables": variables}))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as client:
                for order_id, (status, said) in expected.items():
                    response = await route(client, route_key, order_ref=order_id, reason="damaged")
                    assert response.status_code == status, response.text
                    found = response.json()
                    if status == 201:
                        assert (found["channel"], found["policy"]["eligible"]) == (said, False)
                    else:
                        assert (found["code"], found["marketplace_id"]) == ("unsupported_marketplace", said)


async def test_a_line_without_sku_is_named_by_its_line_id(
    na: httpx.AsyncClient, route_key: dict[str, str]
) -> None:
    line_id = "60311298437701"  # the orderItemId of the Amazon.ca order's only line
    by_line = await route(na, route_key, order_ref=CA, items=[{"line_id": line_id}], reason="damaged")
    unknown = await route(na, route_key, order_ref=CA, items=[{"line_id": "nope"}], reason="damaged")
    both = await route(
        na, route_key, order_ref=CA, items=[{"line_id": line_id, "sku": "X"}], reason="damaged"
    )

    assert by_line.status_code == 201, by_line.text
    assert by_line.json()["policy"]["returned_value"] == {"amount": "89.99", "currency": "CAD"}
    assert (unknown.status_code, unknown.json()["errors"][0]["type"]) == (422, "unknown_line")
    assert unknown.json()["errors"][0]["loc"] == ["body", "items", 0, "line_id"]
    assert (both.status_code, both.json()["code"]) == (422, "validation_error")


async def test_the_mirror_keeps_each_order_under_its_marketplaces_channel(
    settings: Settings, route_key: dict[str, str], standin: AmazonStandIn
) -> None:
    shared = {
        "lwa_client_id": "amzn1.application-oa2-client.test",
        "lwa_client_secret": "client-secret",
        "refresh_token": "Atzr|seller",
        "endpoint": standin.url,
        "lwa_token_url": standin.token_url,
        "mirror_days": "730",
    }
    variables = {
        **{
            f"channel_{channel}_{name}": value
            for channel in ("amazon_us", "amazon_ca")
            for name, value in shared.items()
        },
        **WITH_AMAZON_CA,
    }
    app = create_app(settings.model_copy(update={"channel_variables": variables}))
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        (account,) = seller_accounts(runtime.channels)
        sync = MirrorSync(
            runtime.database,
            account,
            OrderSearch.build(account.channels, runtime.http, buckets=LocalBuckets()),
            every=300,
        )
        while await sync.step() is not Step.done:
            pass
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as client:
            ca = await route(client, route_key, order_ref=CA, reason="damaged")
            mx = await route(client, route_key, order_ref=MX, reason="damaged")

    assert (ca.status_code, ca.json()["channel"], ca.json()["policy"]["id"]) == (
        201,
        "amazon_ca",
        "amazon-ca",
    )
    assert ca.json()["explanation"][0]["rule"] == "order.source"  # answered from the mirror
    assert (mx.status_code, mx.json()["code"]) == (422, "unsupported_marketplace")
    assert [order_id for _, order_id in standin.calls] == [MX]  # not mirrored: asked, and refused
