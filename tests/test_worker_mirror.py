"""`python -m app worker` keeps the Amazon order mirror, and `python -m app mirror status` shows it: both
run as a user runs them, separate processes, against the SP-API stand-in and a local SQS server."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.connectors.amazon_standin import AmazonStandIn, orders_like
from tests.mirror_builders import SELLER_ID, TEMPLATE
from tests.sqs_server import order_change, send

ROOT = Path(__file__).resolve().parents[1]
ORDERS = 150


@pytest.fixture
def standin() -> Iterator[AmazonStandIn]:
    with AmazonStandIn(orders_like(TEMPLATE, ORDERS, now=datetime.now(UTC))) as server:
        yield server


def environment(database: Path, standin: AmazonStandIn, sqs_endpoint: str, queue_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "CHANNEL_AMAZON_US_LWA_CLIENT_ID": "amzn1.application-oa2-client.test",
        "CHANNEL_AMAZON_US_LWA_CLIENT_SECRET": "client-secret",
        "CHANNEL_AMAZON_US_REFRESH_TOKEN": "Atzr|refresh",
        "CHANNEL_AMAZON_US_ENDPOINT": standin.url,
        "CHANNEL_AMAZON_US_LWA_TOKEN_URL": standin.token_url,
        "CHANNEL_AMAZON_US_SELLER_ID": SELLER_ID,
        "CHANNEL_AMAZON_US_SQS_QUEUE_URL": queue_url,
        "CHANNEL_AMAZON_US_MIRROR_DAYS": "30",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_SQS": sqs_endpoint,
    }


def status(env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-m", "app", "mirror", "status"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


async def status_until(env: dict[str, str], pattern: str) -> str:
    """`mirror status` until it matches (bounded: about a minute and a half)."""
    for _ in range(45):
        shown = await asyncio.to_thread(status, env)
        if re.search(pattern, shown):
            return shown
        await asyncio.sleep(1)
    raise AssertionError(f"`mirror status` never showed {pattern!r}; last:\n{shown}")


async def test_the_worker_fills_the_mirror_and_reads_order_changes(
    tmp_path: Path, standin: AmazonStandIn, sqs_endpoint: str, queue_url: str
) -> None:
    env = environment(tmp_path / "router.db", standin, sqs_endpoint, queue_url)
    before = await asyncio.to_thread(status, env)
    assert "orders held      0 (0 stale)" in before
    assert "not started" in before

    worker = subprocess.Popen(
        [sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        shown = await status_until(env, rf"orders held\s+{ORDERS} \(0 stale\)")
        assert "phase            incremental, 2 pages read" in shown
        assert re.search(r"last sync        \d{4}-\d\d-\d\dT", shown)
        assert len(standin.searches) == 2
        assert standin.calls == []  # the worker never calls getOrder

        await send(sqs_endpoint, queue_url, order_change("113-0000007-0000001", datetime.now(UTC)))
        await status_until(env, rf"orders held\s+{ORDERS} \(1 stale\)")
    finally:
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=60)
    assert worker.returncode == 0, errors
    assert "Traceback" not in errors
