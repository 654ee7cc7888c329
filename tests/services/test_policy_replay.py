"""Drafts are worked on in a worker process, within bounds: never on the event loop that serves routing."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator

import pytest

from app.errors import SimulationUnavailable
from app.runtime import Runtime
from app.services import policy_replay
from app.services.policy_replay import Draft, DraftWorkers
from app.settings import DEFAULT_MERCHANT_POLICY, DEFAULT_ROUTING_FILE, Settings


@pytest.fixture
async def workers() -> AsyncIterator[DraftWorkers]:
    pool = DraftWorkers(grace=0.5)
    yield pool
    pool.close()


def shipped_draft(settings: Settings) -> Draft:
    channel = policy_replay.merchant_channel(settings.channels, None)
    text = DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8")
    return Draft(text, "draft", channel.market, DEFAULT_ROUTING_FILE)


async def test_the_work_runs_in_another_process(workers: DraftWorkers) -> None:
    worker_pid = await workers.run(os.getpid, ends_at=time.time() + 30)

    assert worker_pid != os.getpid()


async def test_a_worker_that_outlives_its_bound_is_stopped_and_replaced(workers: DraftWorkers) -> None:
    first = await workers.run(os.getpid, ends_at=time.time() + 30)

    with pytest.raises(SimulationUnavailable) as stopped:
        await workers.run(time.sleep, 600, ends_at=time.time())

    assert stopped.value.status == 503
    assert "Retry-After" in stopped.value.headers
    replacement = await workers.run(os.getpid, ends_at=time.time() + 30)
    assert replacement not in (first, os.getpid())


async def test_more_simulations_than_the_bound_are_told_to_come_back(
    settings: Settings, runtime: Runtime
) -> None:
    busy = DraftWorkers(max_running=0)

    with pytest.raises(SimulationUnavailable, match="retry when one has finished") as refused:
        await policy_replay.simulate(runtime.database, shipped_draft(settings), limit=10, workers=busy)

    assert refused.value.headers["Retry-After"] == "10"


async def test_a_draft_is_read_in_the_worker_and_answered(
    settings: Settings, runtime: Runtime, workers: DraftWorkers
) -> None:
    summary = await policy_replay.simulate(
        runtime.database, shipped_draft(settings), limit=10, workers=workers
    )

    assert summary.draft == "shopify-ca-default@2026.11"
    assert (summary.replayed, summary.truncated) == (0, False)
