"""`python -m app worker`: the webhook worker as its own process, on the same runtime as the API."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError

from app.db.migrate import current_revision, head_revision
from app.observability import configure_logging
from app.runtime import Runtime, open_runtime
from app.services.outcome_jobs import OutcomeJobs, Schedule
from app.services.webhooks.worker import Worker
from app.settings import Settings

log = structlog.get_logger(__name__)


async def run_worker(settings: Settings, poll_interval: float) -> None:
    configure_logging(settings.log_level, settings.log_format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_signal, stop.set)
    async with open_runtime(settings) as runtime:
        if await _migrated(runtime, stop, poll_interval):
            await asyncio.gather(
                Worker(runtime.database, runtime.handlers).run(stop, poll_interval),
                outcome_jobs(runtime).run(stop),
            )


def outcome_jobs(runtime: Runtime) -> OutcomeJobs:
    settings = runtime.settings
    schedule = Schedule(
        read_back_after=timedelta(days=settings.outcomes_read_back_after_days),
        read_back_batch=settings.outcomes_read_back_batch,
        import_every=timedelta(hours=settings.amazon_returns_report_every_hours),
        import_days=settings.amazon_returns_report_days,
    )
    return OutcomeJobs(runtime.database, runtime.connectors, runtime.reports, runtime.channels, schedule)


async def _migrated(runtime: Runtime, stop: asyncio.Event, poll_interval: float) -> bool:
    """Wait for `serve` or `db upgrade` to migrate: two processes must not migrate at once."""
    waiting = False
    while not stop.is_set():
        try:
            async with runtime.database.engine.connect() as connection:
                if await current_revision(connection) == head_revision():
                    return True
        except (OSError, SQLAlchemyError) as error:
            log.warning("worker_database_unavailable", error=type(error).__name__)
        if not waiting:
            log.info("worker_waiting_for_migrations", head=head_revision())
            waiting = True
        await asyncio.sleep(max(poll_interval, 1.0))
    return False
