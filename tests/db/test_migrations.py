"""The migrations run both ways on the suite's database engine (PostgreSQL or SQLite)."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.migrate import alembic_config, head_revision
from app.db.tables import Base


async def test_head_has_every_table_of_the_models(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    assert set(Base.metadata.tables) <= tables
    # One line of history: two migrations written side by side would leave two heads.
    assert ScriptDirectory.from_config(alembic_config(database_url)).get_heads() == [head_revision()]


async def test_downgrade_and_upgrade_again(tmp_path: object) -> None:
    # On a scratch SQLite file so the suite's database stays at head for the other tests.
    url = f"sqlite+aiosqlite:///{tmp_path}/roundtrip.db"
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "head")
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "head")
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    assert set(Base.metadata.tables) <= tables
