"""Readiness: the database answers, and its schema is the one this code needs."""

from __future__ import annotations

from app.db.database import Database
from app.db.migrate import current_revision, head_revision
from app.errors import MigrationsPending


async def readiness(database: Database) -> str | None:
    """The database's migration, when it is the head; else `DatabaseUnavailable` or `MigrationsPending`."""
    async with database.reading() as session:  # an unreachable database is `DatabaseUnavailable`
        revision = await current_revision(await session.connection())
    if revision != head_revision():
        raise MigrationsPending(
            f"The database is at migration {revision}, the service needs {head_revision()}: "
            "run `python -m app db upgrade`."
        )
    return revision
