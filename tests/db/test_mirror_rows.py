"""The order mirror's rows: a copy never replaces a newer one, a change announced stays until a copy
as new arrives, and a repeated or overtaken announcement writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.db import mirror as rows
from app.db.database import Database
from app.runtime import Runtime

ACCOUNT = "0123456789abcdef"
ORDER = "113-0000001-0000001"
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def copy(updated: datetime, marker: str) -> rows.OrderCopy:
    return rows.OrderCopy(
        order_id=ORDER,
        channel="amazon_us",
        snapshot={"marker": marker},
        created_time=T0,
        last_updated_time=updated,
    )


@pytest.fixture
def database(runtime: Runtime) -> Database:
    return runtime.database


async def hold(database: Database, *copies: rows.OrderCopy, at: datetime, asked: bool = False) -> None:
    async with database.transaction() as session:
        await rows.hold(session, ACCOUNT, list(copies), at, asked_after_notice=asked)


async def note(database: Database, changed_at: datetime, noted_at: datetime) -> bool | None:
    async with database.transaction() as session:
        return await rows.note_change(session, ACCOUNT, ORDER, changed_at, noted_at)


async def held(database: Database) -> rows.Held:
    async with database.reading() as session:
        found = await rows.find(session, ACCOUNT, ORDER)
    assert found is not None
    return found


async def test_an_older_copy_never_replaces_a_newer_one(database: Database) -> None:
    await hold(database, copy(T0 + timedelta(hours=2), "newer"), at=T0 + timedelta(hours=3))
    await hold(database, copy(T0 + timedelta(hours=1), "older"), at=T0 + timedelta(hours=4))
    found = await held(database)
    assert found.snapshot == {"marker": "newer"}
    assert found.fetched_at == T0 + timedelta(hours=3)  # the late answer did not even touch it
    # The same version again is taken: it says the copy was current when it was fetched.
    await hold(database, copy(T0 + timedelta(hours=2), "again"), at=T0 + timedelta(hours=5))
    assert (await held(database)).fetched_at == T0 + timedelta(hours=5)


async def test_an_announced_change_stays_until_a_copy_as_new_arrives(database: Database) -> None:
    await hold(database, copy(T0, "first"), at=T0 + timedelta(minutes=1))
    changed = T0 + timedelta(hours=1)
    assert await note(database, changed, noted_at=changed + timedelta(seconds=5)) is True
    assert (await held(database)).stale
    # A searchOrders page from before the change keeps it stale...
    await hold(database, copy(T0 + timedelta(minutes=30), "still old"), at=changed + timedelta(minutes=1))
    assert (await held(database)).stale
    # ...a copy updated at the change is current.
    await hold(database, copy(changed, "current"), at=changed + timedelta(minutes=2))
    found = await held(database)
    assert (found.snapshot, found.stale) == ({"marker": "current"}, False)


async def test_a_repeated_or_overtaken_announcement_writes_nothing(database: Database) -> None:
    await hold(database, copy(T0, "first"), at=T0)
    later, earlier = T0 + timedelta(hours=2), T0 + timedelta(hours=1)
    assert await note(database, later, noted_at=later) is True
    assert await note(database, later, noted_at=later + timedelta(minutes=1)) is None  # duplicate
    assert await note(database, earlier, noted_at=later + timedelta(minutes=2)) is None  # out of order
    found = await held(database)
    assert (found.changed_at, found.stale) == (later, True)
    # A change the copy already holds does not make it stale.
    await hold(database, copy(later + timedelta(minutes=10), "current"), at=later + timedelta(minutes=11))
    assert await note(database, later + timedelta(minutes=5), noted_at=later + timedelta(minutes=12)) is False
    assert not (await held(database)).stale


async def test_a_change_about_an_order_not_held_keeps_an_older_copy_from_passing_for_current(
    database: Database,
) -> None:
    changed = T0 + timedelta(hours=1)
    assert await note(database, changed, noted_at=changed) is True
    assert (await held(database)).snapshot is None
    await hold(database, copy(T0, "from before the change"), at=changed + timedelta(minutes=1))
    found = await held(database)
    assert (found.snapshot, found.stale) == ({"marker": "from before the change"}, True)


async def test_a_getorder_answer_asked_for_after_the_notice_is_current(database: Database) -> None:
    # Amazon's lastUpdatedTime and the notification's time need not agree to the millisecond:
    # getOrder answers the order as it is, so an answer asked for after the notice was read is current.
    await hold(database, copy(T0, "first"), at=T0)
    changed = T0 + timedelta(hours=1, milliseconds=300)
    noticed = changed + timedelta(seconds=2)
    await note(database, changed, noted_at=noticed)
    await hold(database, copy(T0 + timedelta(hours=1), "asked too early"), at=noticed - timedelta(seconds=1))
    assert (await held(database)).stale
    await hold(database, copy(T0 + timedelta(hours=1), "asked after"), at=noticed, asked=True)
    found = await held(database)
    assert (found.snapshot, found.stale) == ({"marker": "asked after"}, False)
