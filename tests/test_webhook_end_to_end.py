"""The issue's end-to-end check, as deployed: the API (uvicorn) and the worker as two processes.

A `returns/request` webhook sent to the running service becomes a decision that
`GET /v1/decisions` shows, with the worker running as its own process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.services.api_keys import Scope
from tests.conftest import MakeKey
from tests.polling import poll_until, poll_until_sync
from tests.webhook_builders import PREVIOUS_WEBHOOK_SECRET, WEBHOOK_SECRET, delivery, return_request_payload

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0
# Generous for a shared machine; the figure the issue asks for (within a second) is printed, not timed here.
DECISION_TIMEOUT = 15.0
# uvicorn names the port it was given by the system (the command asks for port 0).
LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`serve` and `worker` on the suite's database; yields the API's base URL."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CHANNEL_SHOPIFY_CA_WEBHOOK_SECRETS": f"{WEBHOOK_SECRET},{PREVIOUS_WEBHOOK_SECRET}",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "app"]
    serve_log = tmp_path / "serve.log"
    with serve_log.open("wb") as log:
        processes = [
            subprocess.Popen(
                [*command, "serve", "--port", "0"],
                cwd=ROOT,
                env={**env, "LOG_LEVEL": "INFO"},
                stdout=log,
                stderr=subprocess.STDOUT,
            ),
            subprocess.Popen([*command, "worker", "--poll-interval", "0.1"], cwd=ROOT, env=env),
        ]

    def listening() -> str | None:
        assert all(p.poll() is None for p in processes), "a process exited at start-up"
        found = LISTENING.search(serve_log.read_text(encoding="utf-8", errors="replace"))
        return found.group(1) if found else None

    def ready(base_url: str) -> bool:
        try:
            return httpx.get(f"{base_url}/readyz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    try:
        base_url = poll_until_sync("the API listening", listening, within=START_TIMEOUT)
        poll_until_sync("the API ready", lambda: ready(base_url), within=START_TIMEOUT)
        yield base_url
        # SIGTERM: both stop cleanly (the worker finishes the event in hand first; uvicorn shuts down
        # gracefully, then re-raises the signal).
        for process in processes:
            process.send_signal(signal.SIGTERM)
        api, worker = (process.wait(timeout=15) for process in processes)
        assert api in (0, -signal.SIGTERM)
        assert worker == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)


async def test_a_return_request_webhook_becomes_a_listed_decision(
    service: str, make_key: MakeKey, capsys: pytest.CaptureFixture[str]
) -> None:
    reader = await make_key(Scope.read)
    body, headers = delivery(return_request_payload(), triggered_at="2026-11-20T15:00:00Z")

    async with httpx.AsyncClient(base_url=service, timeout=5.0) as http:
        sent = time.monotonic()
        ack = await http.post("/webhooks/shopify", content=body, headers=headers)
        acked = time.monotonic()
        assert ack.status_code == 200, ack.text
        assert ack.json()["status"] == "accepted"

        async def listed() -> list[dict[str, object]]:
            page = await http.get("/v1/decisions", params={"channel": "shopify_ca"}, headers=reader)
            assert page.status_code == 200, page.text
            items: list[dict[str, object]] = page.json()["items"]
            return items

        items = await poll_until("a listed decision", listed, within=DECISION_TIMEOUT, every=0.01)
        visible = time.monotonic()

        again = await http.post("/webhooks/shopify", content=body, headers=headers)
        assert again.json()["status"] == "duplicate"

    [decision] = items
    assert decision["ticket_id"] is None
    assert decision["order"]["order_ref"] == "#1001"  # type: ignore[index]
    assert decision["reason"] == "size_or_fit"
    with capsys.disabled():  # shown with -s: the figure the "within a second" is about
        sys.stdout.write(
            f"\nwebhook ack {1000 * (acked - sent):.0f} ms; "
            f"decision listed {1000 * (visible - acked):.0f} ms after the ack\n"
        )
