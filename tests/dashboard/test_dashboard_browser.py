"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright, against the
service running as `python -m app serve` on a database seeded with decisions and outcomes.

The numbers the page shows are checked against the API, every chart and table that should have
data must have some, and screenshots are saved (their paths are printed). Skipped, saying why,
where Chromium or Playwright is missing (`.ci/run` installs both) or the database is not PostgreSQL
(the seed is PostgreSQL SQL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.services.api_keys import Scope
from tests.conftest import MakeKey
from tests.sqs_server import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(tempfile.gettempdir()) / "returns-router-dashboard"
SEEDED = 1500

async_playwright: Any
try:
    from playwright.async_api import async_playwright
except ImportError:  # pragma: no cover - the reason is given by the skip below
    async_playwright = None

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install -y chromium)"
    ),
    pytest.mark.skipif(
        async_playwright is None, reason="Playwright is not installed (pip install playwright)"
    ),
]


@pytest.fixture
async def seeded(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("the dashboard's seed is PostgreSQL SQL (bench/seed_outcomes.py)")
    from bench.seed_outcomes import load

    engine = create_async_engine(database_url)
    try:
        await load(engine, SEEDED, datetime.now(UTC), quiet=True)
    finally:
        await engine.dispose()
    return database_url


@pytest.fixture
def service(seeded: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": seeded, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}
    process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], cwd=ROOT, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the service exited at start-up"
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=15)


def every_decision_since(api: httpx.Client, since: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.get(
            "/v1/decisions",
            params={"created_after": since, "limit": 200, **({"cursor": cursor} if cursor else {})},
        ).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def test_the_dashboard_shows_what_the_api_says(service: str, make_key: MakeKey) -> None:
    headers = await make_key(Scope.route, Scope.read, name="dashboard")
    api = httpx.Client(base_url=service, headers=headers, timeout=30.0)
    # Decisions made now, so today's queues have some whatever the hour.
    for order_ref in ("113-4567890-1234567", "#1001", "#1005", "116-1122334-4556677"):
        routed = api.post("/v1/returns/route", json={"order_ref": order_ref, "reason": "damaged"})
        assert routed.status_code == 201, routed.text
    key = headers["Authorization"].removeprefix("Bearer ")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = await browser.new_page(viewport={"width": 1366, "height": 900})
        await page.goto(f"{service}/dashboard")
        await page.get_by_label("Read key").fill(key)
        await page.get_by_role("button", name="Open the dashboard").click()
        await page.wait_for_selector('body[data-loaded="true"]', timeout=60_000)
        status = await page.locator("#status").text_content()
        assert (status or "").startswith("Updated"), status

        # The key is kept for the tab's session only.
        stored = await page.evaluate("[sessionStorage.length, localStorage.length]")
        assert stored == [1, 0]
        # Every field has a label a screen reader can read.
        unlabelled = await page.evaluate(
            "[...document.querySelectorAll('input, select')].filter(e => !e.labels?.length).length"
        )
        assert unlabelled == 0

        # Today's queues: as many decisions per queue as the API lists since the same moment.
        since = await page.locator("#queues").get_attribute("data-since")
        assert since
        expected = Counter(d["queue"]["name"] for d in every_decision_since(api, since))
        shown = {}
        for row in await page.locator("#queues tbody tr[data-queue]").all():
            cells = await row.locator("td").all_text_contents()
            shown[cells[0]] = int(cells[1])
        assert shown == dict(expected)
        assert sum(shown.values()) >= 4

        # Outcomes by rule and by policy: the page's figures are the API's.
        by_rule = {
            g["key"]: g for g in api.get("/v1/stats/outcomes", params={"group_by": "rule"}).json()["groups"]
        }
        rows = await page.locator("#rules tbody tr[data-key]").all()
        assert len(rows) == len(by_rule) > 10
        for row in rows:
            cells = await row.locator("td").all_text_contents()
            group = by_rule[cells[0]]
            assert [int(c.replace(",", "")) for c in cells[1:7]] == [
                group[k] for k in ("decisions", "resolved", "retained", "refunded", "returnless", "claims")
            ]
            assert cells[7] == f"{Decimal(group['retention_rate']) * 100:.2f}%"
            assert cells[8] == f"{Decimal(group['claim_rate']) * 100:.2f}%"
        by_policy = {
            g["key"]: g for g in api.get("/v1/stats/outcomes", params={"group_by": "policy"}).json()["groups"]
        }
        policies = {
            (await row.locator("td").first.text_content()): int(
                await row.locator("td").nth(1).text_content() or 0
            )
            for row in await page.locator("#policies tbody tr[data-key]").all()
        }
        assert policies == {key: g["decisions"] for key, g in by_policy.items()}

        # Each chart has bars; the volume chart's totals are the API's for the same 14 days.
        for chart in ("chart-channel", "chart-classification", "chart-retention-rule", "chart-claims-rule"):
            bars = await page.locator(f'[data-testid="{chart}"] svg[role=img] rect').count()
            assert bars > 0, f"the chart {chart} is empty"
        first_day = (datetime.now(UTC) - timedelta(days=13)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        per_channel = api.get(
            "/v1/stats/decisions", params={"group_by": "channel", "created_after": first_day.isoformat()}
        ).json()["groups"]
        label = await page.locator('[data-testid="chart-channel"] svg[role=img]').get_attribute("aria-label")
        assert label == "Decisions per day by channel: " + ", ".join(
            f"{g['key']} {g['count']}" for g in per_channel
        )
        retention_bars = {
            await bar.get_attribute("data-key"): await bar.get_attribute("data-value")
            for bar in await page.locator('[data-testid="chart-retention-rule"] svg[role=img] rect').all()
        }
        assert retention_bars == {k: g["retention_rate"] for k, g in by_rule.items() if g["decisions"]}

        await page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

        # The explorer: filtered to Shopify, one decision opened with its explanation, reply and outcome.
        await page.get_by_role("textbox", name="Channel", exact=True).fill("shopify_ca")
        await page.get_by_role("button", name="Filter").click()
        channels = page.locator("#decisions tbody tr[data-id] td:nth-child(2)")
        for _ in range(300):  # the page's policy forbids evaluated predicates: poll the cells instead
            listed = await channels.all_text_contents()
            if listed and set(listed) == {"shopify_ca"}:
                break
            await page.wait_for_timeout(100)
        assert listed
        assert set(listed) == {"shopify_ca"}
        first = page.locator("#decisions tbody tr[data-id]").first
        decision_id = await first.get_attribute("data-id")
        await first.get_by_role("button").press("Enter")  # by keyboard
        await page.wait_for_selector('[data-testid="detail"]:not([hidden]) [data-testid="explanation"] li')
        detail = api.get(f"/v1/decisions/{decision_id}").json()
        steps = await page.locator('[data-testid="explanation"] li').count()
        assert steps == len(detail["explanation"]) > 0
        assert detail["template"]["subject"] in (await page.locator("#detail").text_content() or "")
        focused = await page.evaluate("document.activeElement.id")
        assert focused == "detail"
        await page.locator("#detail").screenshot(path=str(SCREENSHOTS / "decision.png"))
        await browser.close()
    api.close()
    for shot in ("dashboard.png", "decision.png"):
        assert (SCREENSHOTS / shot).stat().st_size > 10_000, f"{SCREENSHOTS / shot} is empty"
