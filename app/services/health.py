"""Readiness: the database answers, and its schema is the one this code needs."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from app.db.database import Database
from app.db.migrate import current_revision, head_revision
from app.errors import DatabaseUnavailable, MigrationsPending


async def readiness(database: Database) -> str | None:
    """The database's migration, when it is the head; else `DatabaseUnavailable` or `MigrationsPending`."""
    try:
        async with database.engine.connect() as connection:
            revision = await current_revision(connection)
    except (SQLAlchemyError, OSError) as error:
        raise DatabaseUnavailable("The database cannot be reached.", headers={"Retry-After": "5"}) from error
    if revision != head_revision():
        raise MigrationsPending(
            f"The database is at migration {revision}, the service needs {head_revision()}: "
            "run `python -m app db upgrade`."
        )
    return revision
