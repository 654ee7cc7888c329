"""The Amazon order mirror of each seller account, as lookups use it: a copy of an order current
enough to decide on, getOrder answers kept, and where each account's mirror stands.

A seller account is the live Amazon channels that share credentials (one token, one set of rate-limit
buckets); the mirror is kept per account, under the same name the buckets use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from app import metrics
from app.channels import AmazonChannel, Channel
from app.connectors.amazon_orders import channel_of
from app.connectors.order_mirror import Mirrored
from app.db import mirror as rows
from app.db.database import Database
from app.domain import Order
from app.errors import DatabaseUnavailable, UnsupportedMarketplace, UpstreamError

log = structlog.get_logger(__name__)

_DATABASE_TROUBLE = (SQLAlchemyError, OSError, DatabaseUnavailable)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SellerAccount:
    """The live Amazon channels of one seller authorisation."""

    key: str  # a stable, non-secret name: the rate-limit buckets' and the mirror's
    channels: tuple[AmazonChannel, ...]

    @property
    def name(self) -> str:
        """What metrics and messages call it: its first channel's key."""
        return self.channels[0].key

    @property
    def seller_id(self) -> str | None:
        return next((channel.seller_id for channel in self.channels if channel.seller_id), None)

    @property
    def queue_urls(self) -> set[str]:
        return {channel.sqs_queue_url for channel in self.channels if channel.sqs_queue_url}

    @property
    def mirror_days(self) -> int:
        return max(channel.mirror_days for channel in self.channels)

    def channel_for(self, order: Mapping[str, Any]) -> tuple[AmazonChannel, list[str]] | None:
        """The channel an SP-API order belongs to, and what was assumed to tell it; None when no channel
        of the account sells on its marketplace (it is not mirrored: getOrder would refuse it too)."""
        try:
            return channel_of({"order": order}, self.channels)
        except (UnsupportedMarketplace, UpstreamError):
            return None

    def describe(self) -> str:
        return f"{self.key} ({', '.join(channel.key for channel in self.channels)})"


def seller_accounts(channels: Mapping[str, Channel]) -> list[SellerAccount]:
    """The live Amazon seller accounts among `channels`, in the order their channels are configured."""
    grouped: dict[str, list[AmazonChannel]] = {}
    for channel in channels.values():
        if isinstance(channel, AmazonChannel) and channel.live:
            grouped.setdefault(channel.seller_account, []).append(channel)
    return [SellerAccount(key, tuple(members)) for key, members in grouped.items()]


def copy_of(order: Order) -> rows.OrderCopy | None:
    """The mirror's copy of a normalised order; None without Amazon's lastUpdatedTime to version it."""
    if order.updated_at is None:
        return None
    return rows.OrderCopy(
        order_id=order.order_id,
        channel=order.channel,
        snapshot=order.model_dump(mode="json", exclude={"mirrored_at"}),
        created_time=order.placed_at,
        last_updated_time=order.updated_at,
    )


class MirroredOrders:
    """One seller account's mirror as the Amazon connector reads it (an `OrderMirror`)."""

    def __init__(
        self,
        database: Database,
        account: SellerAccount,
        *,
        max_age: float,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        """`max_age`: how long after the mirror last confirmed an order it may still decide a return."""
        self._database = database
        self.account = account
        self._max_age = timedelta(seconds=max_age)
        self._clock = clock

    async def lookup(self, order_id: str) -> Mirrored:
        if not self._max_age:
            return Mirrored(order=None)
        try:
            async with self._database.reading() as session:
                held = await rows.find(session, self.account.key, order_id)
        except _DATABASE_TROUBLE as error:
            # The mirror only spares getOrder calls: without it, lookups go on as before.
            log.warning("mirror_unavailable", account=self.account.name, error=type(error).__name__)
            return self._answer("unavailable", None)
        if held is None:
            return self._answer("not_held", None)
        if held.snapshot is None:
            return self._answer("not_held", held.changed_at)
        if held.stale:
            return self._answer("stale", held.changed_at)
        confirmed = max(moment for moment in (held.fetched_at, held.confirmed_through) if moment is not None)
        if self._clock() - confirmed > self._max_age:
            return self._answer("too_old", held.changed_at)
        try:
            order = Order.model_validate(held.snapshot)
        except ValidationError:
            # Written by another version of the service: getOrder answers instead.
            return self._answer("not_held", held.changed_at)
        metrics.record_mirror_lookup(self.account.name, "mirror")
        return Mirrored(order=order.model_copy(update={"mirrored_at": confirmed}), changed_at=held.changed_at)

    def _answer(self, why: str, changed_at: datetime | None) -> Mirrored:
        metrics.record_mirror_lookup(self.account.name, why)
        return Mirrored(order=None, changed_at=changed_at)

    async def remember(self, order: Order, asked_at: datetime) -> None:
        copy = copy_of(order)
        if copy is None or not self._max_age:
            return
        try:
            async with self._database.transaction() as session:
                await rows.hold(session, self.account.key, [copy], asked_at, asked_after_notice=True)
        except _DATABASE_TROUBLE as error:
            log.warning("mirror_unavailable", account=self.account.name, error=type(error).__name__)


# --- Where each account's mirror stands ----------------------------------------------------------


@dataclass(frozen=True)
class MirrorStatus:
    account: SellerAccount
    held: int
    stale: int
    phase: str | None  # None: never synced
    pages: int
    pass_started_at: datetime | None
    last_sync_at: datetime | None
    confirmed_through: datetime | None
    last_error: str | None
    kept_aside: int

    def lag(self, now: datetime) -> float | None:
        """Seconds between now and the cutoff the last finished pass confirmed; None before the first."""
        if self.confirmed_through is None:
            return None
        return max(0.0, (now - self.confirmed_through).total_seconds())


async def mirror_status(database: Database, account: SellerAccount) -> MirrorStatus:
    async with database.reading() as session:
        counts = await rows.counts(session, account.key)
        state = await rows.sync_state(session, account.key)
        kept = await rows.kept_count(session, account.key)
    return MirrorStatus(
        account=account,
        held=counts.held,
        stale=counts.stale,
        phase=state.phase if state else None,
        pages=state.pages if state else 0,
        pass_started_at=state.pass_started_at if state else None,
        last_sync_at=state.last_sync_at if state else None,
        confirmed_through=state.confirmed_through if state else None,
        last_error=state.last_error if state else None,
        kept_aside=kept,
    )


async def record_gauges(database: Database, accounts: Iterable[SellerAccount], now: datetime) -> None:
    """Set the mirror's gauges for /metrics from the database."""
    for account in accounts:
        status = await mirror_status(database, account)
        last = status.last_sync_at.timestamp() if status.last_sync_at else None
        metrics.record_mirror(account.name, status.held, status.stale, last, status.lag(now))


def describe(statuses: Sequence[MirrorStatus], now: datetime) -> list[str]:
    """`python -m app mirror status`, in lines."""
    if not statuses:
        return ["no live Amazon seller account: every Amazon channel serves the sandbox, nothing is mirrored"]
    lines: list[str] = []
    for status in statuses:
        lag = status.lag(now)
        lines += [
            f"account {status.account.describe()}",
            f"  orders held      {status.held} ({status.stale} stale)",
            f"  phase            {status.phase or 'not started: run `python -m app worker`'}"
            + (f", {status.pages} pages read" if status.phase else ""),
            f"  last sync        {_when(status.last_sync_at, now)}",
            f"  lag              {f'{lag:.0f} s' if lag is not None else 'none confirmed yet (backfill)'}",
            f"  notifications    {status.kept_aside} kept aside",
        ]
        if status.last_error:
            lines.append(f"  last error       {status.last_error}")
    return lines


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} ({(now - moment).total_seconds():.0f} s ago)"
