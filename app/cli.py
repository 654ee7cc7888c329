"""`python -m app <command>` (also `returns-router`): serve, migrate, manage API keys, export OpenAPI."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import api_keys as key_rows
from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import upgrade
from app.metrics import MULTIPROCESS_DIR
from app.services import api_keys
from app.services.api_keys import Scope
from app.settings import Settings

cli = typer.Typer(help="The Returns Router.", no_args_is_help=True, add_completion=False)
db_cli = typer.Typer(help="The database.", no_args_is_help=True)
keys_cli = typer.Typer(help="API keys.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(keys_cli, name="keys")

T = TypeVar("T")


def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    # Migrating first lets `keys create` work on a database that `serve` has not touched yet.
    upgrade(settings.database_url)

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the API (uvicorn), migrating the database first."""
    import uvicorn

    settings = Settings()
    upgrade(settings.database_url)
    if workers > 1 and not os.environ.get(MULTIPROCESS_DIR):
        # Each worker writes its metrics here, so /metrics answers for all of them, not one.
        os.environ[MULTIPROCESS_DIR] = tempfile.mkdtemp(prefix="returns-router-metrics-")
        atexit.register(shutil.rmtree, os.environ[MULTIPROCESS_DIR], ignore_errors=True)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        server_header=False,
        access_log=False,  # the application writes its own access line, with the request id
        log_level=settings.log_level.lower(),
    )


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations up to head."""
    upgrade(Settings().database_url)
    typer.echo("database at head")


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for, e.g. the helpdesk's name.")],
    scope: Annotated[list[Scope], typer.Option(help="route, act or read; repeat for several.")],
) -> None:
    """Issue a key. It is printed once, alone on the last line, and stored only as a hash."""
    row, key = _with_session(Settings(), lambda session: api_keys.issue(session, name, set(scope)))
    typer.echo(f"created key {row.id} ({row.name}) with scopes: {row.scopes}", err=True)
    typer.echo(key)


@keys_cli.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    rows = _with_session(Settings(), key_rows.list_all)
    for row in rows:
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        typer.echo(f"{row.id}\t{row.name}\t{row.scopes}\t{row.created_at:%Y-%m-%d %H:%M}\t{state}")


@keys_cli.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, as `keys list` shows it.")],
) -> None:
    """Revoke a key: running services refuse it within API_KEY_CACHE_SECONDS (5 s by default)."""
    revoked = _with_session(Settings(), lambda session: key_rows.revoke(session, key_id, datetime.now(UTC)))
    if not revoked:
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@cli.command()
def openapi() -> None:
    """Print the OpenAPI document (what openapi/openapi.json holds)."""
    from app.main import create_app

    typer.echo(json.dumps(create_app().openapi(), indent=2, ensure_ascii=False))


def main() -> None:
    cli()
