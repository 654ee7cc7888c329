"""The Amazon order mirror's SQL: copies of orders that never replace a newer one, announced changes,
each account's sync state under a lease, and the notifications kept aside."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import KeptNotification, MirroredOrder, MirrorSync

ORDERS = MirroredOrder.__table__
SYNC = MirrorSync.__table__


@dataclass(frozen=True)
class OrderCopy:
    """An order as Amazon answered it at `fetched_at`, normalised, to hold in the mirror."""

    order_id: str
    channel: str
    snapshot: dict[str, Any]  # the normalised `Order`, as JSON
    created_time: datetime
    last_updated_time: datetime


@dataclass(frozen=True)
class Held:
    """What the mirror holds of one order, and what the account's last finished sync confirmed."""

    snapshot: dict[str, Any] | None
    stale: bool
    fetched_at: datetime | None
    changed_at: datetime | None
    confirmed_through: datetime | None


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def hold(
    session: AsyncSession,
    account: str,
    copies: Sequence[OrderCopy],
    fetched_at: datetime,
    *,
    asked_after_notice: bool = False,
) -> None:
    """Hold `copies`, each replacing the copy held only if that one is no newer (Amazon's
    lastUpdatedTime): a late or repeated answer never makes the mirror older.

    A copy stays stale while an announced change is newer than it. With `asked_after_notice` (a
    getOrder answer, asked for at `fetched_at`), a copy asked for after the change was read is
    current whatever its timestamps say: Amazon answers getOrder with the order as it is.
    """
    if not copies:
        return
    statement = _insert(session)(ORDERS)
    incoming = statement.excluded
    still_stale = and_(ORDERS.c.changed_at.is_not(None), ORDERS.c.changed_at > incoming.last_updated_time)
    if asked_after_notice:
        still_stale = and_(still_stale, ORDERS.c.noted_at > fetched_at)
    statement = statement.on_conflict_do_update(
        index_elements=[ORDERS.c.account, ORDERS.c.order_id],
        set_={
            "channel": incoming.channel,
            "order_snapshot": incoming.order_snapshot,
            "created_time": incoming.created_time,
            "last_updated_time": incoming.last_updated_time,
            "fetched_at": incoming.fetched_at,
            "stale": still_stale,
        },
        where=or_(
            ORDERS.c.last_updated_time.is_(None),
            ORDERS.c.last_updated_time <= incoming.last_updated_time,
        ),
    )
    await session.execute(
        statement,
        [
            {
                "account": account,
                "order_id": copy.order_id,
                "channel": copy.channel,
                "order_snapshot": copy.snapshot,
                "created_time": copy.created_time,
                "last_updated_time": copy.last_updated_time,
                "fetched_at": fetched_at,
                "changed_at": None,
                "noted_at": None,
                "stale": False,
            }
            for copy in copies
        ],
    )


async def note_change(
    session: AsyncSession, account: str, order_id: str, changed_at: datetime, noted_at: datetime
) -> bool | None:
    """Record that Amazon announced a change of the order at `changed_at`.

    Answers whether the copy held is stale now, or None when a change as new was known already (a
    duplicate, or a notification overtaken by a later one): nothing is written then.
    """
    statement = _insert(session)(ORDERS).values(
        account=account,
        order_id=order_id,
        changed_at=changed_at,
        noted_at=noted_at,
        stale=True,
    )
    incoming = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[ORDERS.c.account, ORDERS.c.order_id],
        set_={
            "changed_at": incoming.changed_at,
            "noted_at": incoming.noted_at,
            "stale": or_(
                ORDERS.c.last_updated_time.is_(None), ORDERS.c.last_updated_time < incoming.changed_at
            ),
        },
        where=or_(ORDERS.c.changed_at.is_(None), ORDERS.c.changed_at < incoming.changed_at),
    ).returning(ORDERS.c.stale)
    stale = (await session.execute(statement)).scalar_one_or_none()
    return None if stale is None else bool(stale)


async def find(session: AsyncSession, account: str, order_id: str) -> Held | None:
    query = (
        select(
            MirroredOrder.order_snapshot,
            MirroredOrder.stale,
            MirroredOrder.fetched_at,
            MirroredOrder.changed_at,
            MirrorSync.confirmed_through,
        )
        .outerjoin(MirrorSync, MirrorSync.account == MirroredOrder.account)
        .where(MirroredOrder.account == account, MirroredOrder.order_id == order_id)
    )
    row = (await session.execute(query)).one_or_none()
    if row is None:
        return None
    return Held(
        snapshot=row.order_snapshot,
        stale=row.stale,
        fetched_at=row.fetched_at,
        changed_at=row.changed_at,
        confirmed_through=row.confirmed_through,
    )


async def forget_older_than(session: AsyncSession, account: str, created_before: datetime) -> int:
    """Drop the orders created before the window; a change noted on an order never held goes with them."""
    result = await session.execute(
        delete(MirroredOrder).where(
            MirroredOrder.account == account,
            or_(
                MirroredOrder.created_time < created_before,
                and_(MirroredOrder.created_time.is_(None), MirroredOrder.noted_at < created_before),
            ),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Counts:
    held: int
    stale: int


async def counts(session: AsyncSession, account: str) -> Counts:
    query = select(
        func.count(MirroredOrder.order_snapshot),
        func.count(MirroredOrder.order_snapshot).filter(MirroredOrder.stale.is_(True)),
    ).where(MirroredOrder.account == account)
    held, stale = (await session.execute(query)).one()
    return Counts(held=int(held), stale=int(stale))


# --- Each account's sync: one worker at a time, by lease -----------------------------------------


async def claim_sync(
    session: AsyncSession,
    account: str,
    owner: str,
    now: datetime,
    lease_until: datetime,
    first_pass: dict[str, Any],
) -> MirrorSync | None:
    """Take (or keep) the lease on the account's sync, creating its state with `first_pass` the first
    time; None while another worker holds an unexpired lease."""
    await session.execute(
        _insert(session)(SYNC)
        .values(account=account, pages=0, **first_pass)
        .on_conflict_do_nothing(index_elements=[SYNC.c.account])
    )
    statement = (
        update(MirrorSync)
        .where(
            MirrorSync.account == account,
            or_(
                MirrorSync.lease_owner.is_(None),
                MirrorSync.lease_owner == owner,
                MirrorSync.lease_until < now,
            ),
        )
        .values(lease_owner=owner, lease_until=lease_until)
        .returning(MirrorSync)
        .execution_options(synchronize_session=False)
    )
    return (await session.scalars(statement)).one_or_none()


async def advance(session: AsyncSession, account: str, owner: str, values: dict[str, Any]) -> bool:
    """Write where the sync stands, if this worker still holds the lease; False when it lost it."""
    result = await session.execute(
        update(MirrorSync)
        .where(MirrorSync.account == account, MirrorSync.lease_owner == owner)
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


async def release_sync(session: AsyncSession, account: str, owner: str) -> None:
    await session.execute(
        update(MirrorSync)
        .where(MirrorSync.account == account, MirrorSync.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


async def sync_state(session: AsyncSession, account: str) -> MirrorSync | None:
    return await session.get(MirrorSync, account)


# --- Notifications kept aside --------------------------------------------------------------------


async def keep_aside(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(
        _insert(session)(KeptNotification)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[KeptNotification.message_id])
    )


async def kept_count(session: AsyncSession, account: str | None = None) -> int:
    query = select(func.count()).select_from(KeptNotification)
    if account is not None:
        query = query.where(KeptNotification.account == account)
    return int(await session.scalar(query) or 0)
