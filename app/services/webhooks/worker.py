"""The worker: claims stored events one at a time, processes each once, retries, then parks.

Exactly once: a claim is a lease (`next_attempt_at` while processing), and the effect is written in
the same transaction that checks the claim is still this worker's and marks the event processed.
A worker that dies loses its lease and another takes the event over; a worker whose lease lapsed
finds its claim taken and writes nothing.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import structlog
from pydantic import ValidationError

from app import metrics
from app.connectors.retry import RetryPolicy
from app.db import webhook_events as inbox
from app.db.database import Database, described
from app.db.tables import WebhookEvent
from app.db.webhook_events import EventStatus
from app.errors import ProblemError, UpstreamError
from app.services.stopping import pause
from app.services.webhooks.handlers import Handler, UnusableEvent

log = structlog.get_logger(__name__)

LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 8
# Between attempts: 5 s, 10 s, 20 s ... up to 15 minutes, jittered; eight attempts span about an hour.
BACKOFF = RetryPolicy(attempts=MAX_ATTEMPTS, base_delay=5.0, max_delay=900.0, max_retry_after=900.0)
# How often the loop measures the inbox for /metrics: often enough to graph, rarely enough to cost nothing.
BACKLOG_EVERY = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


class Worker:
    def __init__(
        self,
        database: Database,
        handlers: Mapping[str, Handler],
        *,
        lease: timedelta = LEASE,
        backoff: RetryPolicy = BACKOFF,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._database = database
        self._handlers = handlers
        self._lease = lease
        self._backoff = backoff
        self._clock = clock

    async def process_next(self) -> bool:
        """Claim the next due event and process it; False when none was due."""
        token = secrets.token_hex(16)
        now = self._clock()
        async with self._database.transaction() as session:
            event = await inbox.claim_next(session, now, now + self._lease, token)
        if event is None:
            return False
        await self.process(event, token)
        return True

    async def process(self, event: WebhookEvent, token: str) -> None:
        """Process an event claimed under `token`."""
        events = log.bind(webhook_id=event.id, topic=event.topic, attempt=event.attempts)
        handler = self._handlers.get(event.topic)
        try:
            apply = await handler.prepare(event, self._clock()) if handler else None
            async with self._database.transaction() as session:
                if not await inbox.hold_claim(session, event.id, token):
                    events.warning("webhook_claim_lost")  # another worker took it over: it does the work
                    return
                if apply is None or handler is None:
                    status, outcome = EventStatus.ignored, f"no handler for {event.topic}"
                else:
                    if event.subject is not None:
                        await inbox.lock_subject(session, event.subject)
                    if handler.skip_if_stale and await inbox.newer_change_applied(session, event):
                        status, outcome = EventStatus.superseded, "a later change was applied already"
                    else:
                        status, outcome = EventStatus.processed, await apply(session)
                await inbox.finish(session, event.id, status, outcome, self._clock())
            events.info("webhook_processed", status=status.value, outcome=outcome)
        except Exception as error:  # noqa: BLE001 - every failure is retried or parked, with its error
            await self._failed(event, token, error)

    async def _failed(self, event: WebhookEvent, token: str, error: Exception) -> None:
        description = described(error)  # stored and logged: a database error's values are left out
        events = log.bind(webhook_id=event.id, topic=event.topic, attempt=event.attempts)
        now = self._clock()
        async with self._database.transaction() as session:
            if _permanent(error) or event.attempts >= self._backoff.attempts:
                if await inbox.park(session, event.id, token, description, now):
                    events.warning("webhook_parked", error=description)
                return
            wait = self._backoff.delay(event.attempts, None) or self._backoff.max_delay
            if isinstance(error, UpstreamError) and error.retry_after is not None:
                wait = max(wait, min(error.retry_after, self._backoff.max_retry_after))
            if await inbox.release_for_retry(
                session, event.id, token, description, now + timedelta(seconds=wait)
            ):
                events.info("webhook_retry_scheduled", error=description, wait=round(wait, 1))

    async def record_backlog(self) -> None:
        """Set the inbox depth and age gauges from the database."""
        async with self._database.reading() as session:
            depth, oldest = await inbox.backlog(session)
        age = (self._clock() - _aware(oldest)).total_seconds() if oldest is not None else 0.0
        metrics.record_webhook_inbox(depth, max(0.0, age))

    async def run(self, stop: asyncio.Event, poll_interval: float) -> None:
        """Process events until `stop` is set; the event in hand is finished first."""
        log.info("worker_started", poll_interval=poll_interval)
        measured_at = -BACKLOG_EVERY
        while not stop.is_set():
            try:
                if time.monotonic() - measured_at >= BACKLOG_EVERY:
                    measured_at = time.monotonic()
                    await self.record_backlog()
                busy = await self.process_next()
            except Exception as error:  # noqa: BLE001 - e.g. the database is away: wait and try again
                log.warning("worker_claim_failed", error=type(error).__name__)
                busy = False
            if not busy:
                await pause(stop, poll_interval)
        log.info("worker_stopped")


def _aware(moment: datetime) -> datetime:
    # SQLite gives timestamps back without their zone; they were stored in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _permanent(error: Exception) -> bool:
    """Errors that another attempt cannot change: the event itself is the trouble."""
    if isinstance(error, UnusableEvent | ValidationError):
        return True
    return isinstance(error, ProblemError) and error.status < 500
