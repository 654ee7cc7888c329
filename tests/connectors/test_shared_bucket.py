"""Two worker processes sharing one Redis bucket together stay within it, as replicas must."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from tests.connectors.amazon_standin import AmazonStandIn
from tests.connectors.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
# Faster than Amazon's 0.5/s so the test is short; the arithmetic is the same.
RATE, BURST, SECONDS = 10.0, 5, 3.0


async def test_two_processes_sharing_redis_never_exceed_the_bucket(
    amazon_payload: Callable[[str], dict[str, Any]], redis: Redis
) -> None:
    client_id = f"amzn1.application-oa2-client.{uuid.uuid4().hex}"  # a bucket of this test alone
    with AmazonStandIn(template=amazon_payload("113-4567890-1234567")) as standin:
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.connectors.bucket_worker",
                    TEST_REDIS_URL,
                    standin.url,
                    client_id,
                ]
                + [repr(SECONDS), repr(RATE), str(BURST)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            for worker in workers:  # each says when it has imported and connected
                assert worker.stdout is not None
                assert worker.stdout.readline().strip() == "ready", worker.communicate(timeout=30)
            for worker in workers:  # then all start together
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            outputs = [worker.communicate(timeout=30) for worker in workers]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        assert [worker.returncode for worker in workers] == [0, 0], [err for _, err in outputs]
        reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
        arrivals = sorted(at for at, _ in standin.calls)

    assert all(report["done"] > 0 for report in reports), reports  # both took part
    assert sum(report["done"] for report in reports) == len(arrivals)
    elapsed = arrivals[-1] - arrivals[0]
    allowed = RATE * elapsed + BURST
    # +1: the first and last arrivals are each timed a little after their token was taken.
    assert len(arrivals) <= allowed + 1, (len(arrivals), allowed)
    # And they did press on it: this is a test of the limit, not of an idle pair.
    assert len(arrivals) >= 0.8 * allowed, (len(arrivals), allowed)
    # Every second of it, not only on the whole.
    for first in range(len(arrivals)):
        in_window = sum(1 for at in arrivals[first:] if at - arrivals[first] <= 1.0)
        assert in_window <= RATE * 1.0 + BURST + 1
