"""`POST /v1/policies/simulate`: stored decisions replayed under a draft; nothing is written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.tables import Decision as DecisionRow
from app.services import policy_replay
from app.services.api_keys import Scope
from app.settings import DEFAULT_MERCHANT_POLICY
from tests.conftest import MakeKey

SHIPPED = DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8")
# 45-day window, 10% fee, 15% bonus: the same edits a merchant would make to the shipped file.
DRAFT = (
    SHIPPED.replace('version: "2026.11"', 'version: "2026.12"')
    .replace("  days: 30 ", "  days: 45 ")
    .replace('store_credit_bonus_percent: "10"', 'store_credit_bonus_percent: "15"')
    .replace('then: {restocking_fee_percent: "15"}', 'then: {restocking_fee_percent: "10"}')
)


@pytest.fixture
async def stored(client: httpx.AsyncClient, make_key: MakeKey) -> list[dict[str, Any]]:
    """Five Shopify decisions and one Amazon decision, routed through the API."""
    headers = await make_key(Scope.route, name="helpdesk")
    cases = [
        ("#1001", "size_or_fit", "2026-11-26T15:00:00Z"),  # in window: fee and bonus change
        ("#1002", "size_or_fit", "2026-11-26T15:00:00Z"),  # window ended 2026-11-23: 45 days reopen it
        ("#1002", "defective", "2026-11-26T15:00:00Z"),
        ("#1005", "size_or_fit", "2026-11-26T15:00:00Z"),  # review
        ("#1004", "other", "2026-11-26T15:00:00Z"),  # not shipped: nothing changes
        ("113-4567890-1234567", "size_or_fit", "2026-12-03T15:00:00Z"),
    ]
    answers = []
    for order_ref, reason, as_of in cases:
        body = {"order_ref": order_ref, "reason": reason, "as_of": as_of, "customer_message": "Hi"}
        response = await client.post("/v1/returns/route", json=body, headers=headers)
        assert response.status_code == 201, response.text
        answers.append(response.json())
    return answers


async def simulate(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/v1/policies/simulate", json=body, headers=headers)


async def count_decisions(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(DecisionRow)) or 0)


async def test_a_draft_is_replayed_over_stored_shopify_decisions_and_nothing_is_written(
    client: httpx.AsyncClient,
    make_key: MakeKey,
    stored: list[dict[str, Any]],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    reader = await make_key(Scope.read)
    before = await count_decisions(sessions)

    response = await simulate(client, reader, policy=DRAFT, examples=10)

    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["channel"] == "shopify_ca"
    assert summary["draft"] == "shopify-ca-default@2026.12"
    assert (summary["replayed"], summary["changed"], summary["unchanged"]) == (5, 4, 1)
    assert summary["stored_under"] == {"shopify-ca-default@2026.11": 5}
    fields = {item["field"]: item for item in summary["fields"]}
    assert fields["eligible"]["kinds"] == {"false → true": 1}
    assert fields["store_credit_bonus"]["kinds"] == {"10% → 15%": 3, "0% → 15%": 1}
    assert fields["restocking_fee"]["kinds"] == {"lower": 2, "higher": 1}
    assert fields["queue"]["changed"] == 0
    reopened = next(example for example in summary["examples"] if example["order_ref"] == "#1002")
    assert {"field": "eligible", "before": "false", "after": "true", "kind": "false → true"} in reopened[
        "changes"
    ]
    assert summary["truncated"] is False
    assert await count_decisions(sessions) == before


async def test_since_and_limit_bound_the_replay(
    client: httpx.AsyncClient, make_key: MakeKey, stored: list[dict[str, Any]]
) -> None:
    reader = await make_key(Scope.read)

    limited = (await simulate(client, reader, policy=DRAFT, limit=2)).json()
    future = (await simulate(client, reader, policy=DRAFT, since="2099-01-01T00:00:00Z")).json()

    assert (limited["replayed"], limited["truncated"]) == (2, True)
    assert (future["replayed"], future["truncated"]) == (0, False)


async def test_a_bad_draft_is_a_422_naming_the_line(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    reader = await make_key(Scope.read)
    draft = DRAFT.replace("days_since_delivery: {at_most: 90}", "days_since_delivery: {at_most: ninety}")
    line = next(number for number, text in enumerate(draft.splitlines(), 1) if "ninety" in text)

    response = await simulate(client, reader, policy=draft)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "invalid_policy"
    assert problem["line"] == line
    assert f"draft: line {line}: " in problem["detail"]
    assert "rules[0].when.days_since_delivery.at_most" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "policy"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"policy": "id: [unclosed"}, "invalid_policy"),
        ({"policy": "x" * 65_537}, "validation_error"),
        ({"policy": SHIPPED, "channel": "amazon_us"}, "validation_error"),
        ({"policy": SHIPPED, "limit": 5_001}, "validation_error"),
    ],
)
async def test_what_a_simulation_refuses(
    client: httpx.AsyncClient, make_key: MakeKey, body: dict[str, Any], code: str
) -> None:
    reader = await make_key(Scope.read)

    response = await simulate(client, reader, **body)

    assert response.status_code == 422
    assert response.json()["code"] == code


async def test_simulation_needs_the_read_scope(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    router = await make_key(Scope.route)

    forbidden = await simulate(client, router, policy=SHIPPED)
    anonymous = await simulate(client, {}, policy=SHIPPED)

    assert forbidden.status_code == 403
    assert anonymous.status_code == 401


def alias_bomb(levels: int) -> str:
    """Each level a list naming the level before nine times: 9 ** levels strings once expanded."""
    anchors = [f"  a0: &a0 [{', '.join(['lol'] * 9)}]\n"]
    anchors += [f"  a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]\n" for n in range(1, levels + 1)]
    return SHIPPED.replace("must:\n", "x-anchors:\n" + "".join(anchors) + "must:\n")


def with_rules(count: int) -> str:
    extra = "".join(
        f"  - {{id: r{n}, when: {{fault: customer}}, then: {{review: true}}}}\n" for n in range(count)
    )
    return SHIPPED.replace("\nlocales:", extra + "\nlocales:")


HOSTILE_DRAFTS = {
    # 531,441 strings: refused before anything is expanded, naming the line of the alias that crosses.
    "alias bomb": (
        alias_bomb(6),
        "  a4: &a4",
        "stands for more than 50,000 values once its aliases are expanded",
    ),
    "self-referencing alias": (
        SHIPPED.replace("must:\n", "must: &loop [*loop]\nx-must:\n"),
        "&loop",
        "the alias *loop is inside the value it names",
    ),
    "20,000-deep list": (
        SHIPPED.replace("must:\n", "must: " + "[" * 20_000 + "]" * 20_000 + "\nx-must:\n"),
        "[[[",
        "nests deeper than 32 levels",
    ),
    "5,000-digit integer": (
        SHIPPED.replace("  days: 30 ", "  days: " + "9" * 5_000 + " "),
        "  days: 999",
        "(5,000 characters)' cannot be read",
    ),
    "window of 99,999,999,999 days": (
        SHIPPED.replace("  days: 30 ", "  days: 99999999999 "),
        "days: 99999999999",
        "window.days: Input should be less than or equal to 3660",
    ),
    "a month that does not exist": (
        SHIPPED.replace('placed_from: "11-01"', "placed_from: 2026-13-45"),
        "placed_from",
        "'2026-13-45' cannot be read: month must be in 1..12",
    ),
    "201 rules": (with_rules(196), "rules:", "rules: List should have at most 200 items"),
}


@pytest.mark.parametrize(("draft", "marker", "problem"), HOSTILE_DRAFTS.values(), ids=HOSTILE_DRAFTS.keys())
async def test_a_draft_built_to_be_costly_is_a_422_naming_the_line(
    client: httpx.AsyncClient, make_key: MakeKey, draft: str, marker: str, problem: str
) -> None:
    reader = await make_key(Scope.read)
    line = next(number for number, text in enumerate(draft.splitlines(), 1) if marker in text)

    response = await simulate(client, reader, policy=draft)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    refused = response.json()
    assert refused["code"] == "invalid_policy"
    assert refused["line"] == line
    assert refused["detail"].startswith(f"draft: line {line}: ")
    assert problem in refused["detail"]


async def test_a_replay_stops_at_its_time_budget_and_says_so(
    client: httpx.AsyncClient,
    make_key: MakeKey,
    stored: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = await make_key(Scope.read)
    monkeypatch.setattr(policy_replay, "TIME_BUDGET", 0.0)  # spent before the first decision

    response = await simulate(client, reader, policy=DRAFT)

    assert response.status_code == 200, response.text
    assert (response.json()["replayed"], response.json()["truncated"]) == (0, True)
