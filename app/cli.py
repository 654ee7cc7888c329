"""`python -m app <command>` (also `returns-router`): serve, work the webhook inbox and the Amazon order
mirror, migrate, manage API keys, replay a draft policy over stored decisions, export OpenAPI."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.channel_config import ChannelConfigError
from app.db import api_keys as key_rows
from app.db import webhook_events as webhook_rows
from app.db.engine import open_database
from app.db.migrate import upgrade
from app.errors import ProblemError
from app.metrics import MULTIPROCESS_DIR
from app.policy import PolicyFileError
from app.policy.replay import describe
from app.runtime import load_policy_book
from app.services import api_keys, mirror, policy_replay
from app.services.api_keys import Scope
from app.settings import Settings

cli = typer.Typer(help="The Returns Router.", no_args_is_help=True, add_completion=False)
db_cli = typer.Typer(help="The database.", no_args_is_help=True)
keys_cli = typer.Typer(help="API keys.", no_args_is_help=True)
webhooks_cli = typer.Typer(help="The Shopify webhook inbox.", no_args_is_help=True)
outcomes_cli = typer.Typer(help="What happened after the decisions.", no_args_is_help=True)
mirror_cli = typer.Typer(help="The Amazon order mirror.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(outcomes_cli, name="outcomes")
cli.add_typer(mirror_cli, name="mirror")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(webhooks_cli, name="webhooks")

T = TypeVar("T")


def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    # Migrating first lets `keys create` work on a database that `serve` has not touched yet.
    upgrade(settings.database_url)

    async def run() -> T:
        database = open_database(settings.database_url)
        try:
            async with database.transaction() as session:
                return await work(session)
        finally:
            await database.dispose()

    return asyncio.run(run())


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the API (uvicorn), migrating the database first."""
    import uvicorn

    from app.serving import ServeLimits, uvicorn_options

    settings = Settings()
    try:
        load_policy_book(settings)  # the lifespan loads them again; this says why it would not start
    except (ChannelConfigError, PolicyFileError) as error:
        typer.echo(f"not starting: {error}", err=True)
        raise typer.Exit(1) from None
    upgrade(settings.database_url)
    if workers > 1 and not os.environ.get(MULTIPROCESS_DIR):
        # Each worker writes its metrics here, so /metrics answers for all of them, not one.
        os.environ[MULTIPROCESS_DIR] = tempfile.mkdtemp(prefix="returns-router-metrics-")
        atexit.register(shutil.rmtree, os.environ[MULTIPROCESS_DIR], ignore_errors=True)
    uvicorn.run(
        "app.main:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        server_header=False,
        access_log=False,  # the application writes its own access line, with the request id
        log_level=settings.log_level.lower(),
        **uvicorn_options(ServeLimits.from_settings(settings)),
    )


@cli.command()
def worker(
    poll_interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between looks at an empty inbox.")
    ] = 0.25,
) -> None:
    """Process stored webhook events, and keep the Amazon order mirror, until SIGTERM or SIGINT."""
    from app.worker import run_worker

    settings = Settings()
    try:
        load_policy_book(settings)  # the runtime loads them again; this says why it would not start
    except (ChannelConfigError, PolicyFileError) as error:
        typer.echo(f"not starting: {error}", err=True)
        raise typer.Exit(1) from None
    asyncio.run(run_worker(settings, poll_interval))


@webhooks_cli.command("requeue")
def webhooks_requeue(
    webhook_id: Annotated[str, typer.Argument(help="The event's X-Shopify-Webhook-Id.")],
) -> None:
    """Send a parked event round again, with a fresh count of attempts."""
    requeued = _with_session(
        Settings(), lambda session: webhook_rows.requeue_parked(session, webhook_id, datetime.now(UTC))
    )
    if not requeued:
        typer.echo(f"no parked event {webhook_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"requeued {webhook_id}")


@outcomes_cli.command("import-amazon")
def outcomes_import_amazon(
    channel: Annotated[str, typer.Option(help="The Amazon channel the report is of, e.g. amazon_us.")],
    file: Annotated[
        Path, typer.Option(help="The returns report (tab-separated, gzip or not).", dir_okay=False)
    ],
) -> None:
    """Import Amazon's returns report (GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE) saved by hand."""
    from app.services.outcome_commands import import_file

    try:
        content = file.read_bytes()
    except OSError as error:
        typer.echo(f"cannot read {file}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    settings = Settings()
    upgrade(settings.database_url)
    ok, lines = asyncio.run(import_file(settings, channel, content, file.name))
    for line in lines:
        typer.echo(line)
    if not ok:
        raise typer.Exit(1)


@outcomes_cli.command("fetch-amazon")
def outcomes_fetch_amazon(
    channel: Annotated[str, typer.Option(help="A live Amazon channel, e.g. amazon_us.")],
) -> None:
    """Fetch Amazon's returns report through the Reports API now, and import it."""
    from app.services.outcome_commands import fetch_report

    settings = Settings()
    upgrade(settings.database_url)
    ok, lines = asyncio.run(fetch_report(settings, channel))
    for line in lines:
        typer.echo(line)
    if not ok:
        raise typer.Exit(1)


@outcomes_cli.command("unmatched")
def outcomes_unmatched(
    channel: Annotated[str | None, typer.Option(help="Only this channel's lines.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many lines.")] = 100,
) -> None:
    """Lines of Amazon's returns report that match no decision (yet), latest first, with why."""
    from app.services import outcomes

    lines, counts = _with_session(Settings(), lambda session: outcomes.unmatched(session, channel, limit))
    for line in lines:
        typer.echo(
            f"{line['order_id']}\t{line['sku']}\t{line['request_status']}\t{line['outcome']}\t"
            f"{line['report']}\t{line['problem']}"
        )
    typer.echo(
        "unmatched lines: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"),
        err=True,
    )


@mirror_cli.command("status")
def mirror_status() -> None:
    """Each live Amazon seller account's mirror: orders held, last sync, lag, notifications kept aside."""
    settings = Settings()
    upgrade(settings.database_url)

    async def run() -> list[mirror.MirrorStatus]:
        database = open_database(settings.database_url)
        try:
            accounts = mirror.seller_accounts(settings.channels)
            return [await mirror.mirror_status(database, account) for account in accounts]
        finally:
            await database.dispose()

    for line in mirror.describe(asyncio.run(run()), datetime.now(UTC)):
        typer.echo(line)


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
def replay(
    policy: Annotated[Path, typer.Option(help="The draft merchant policy (YAML).", dir_okay=False)],
    since: Annotated[
        str | None, typer.Option(help="Only decisions created from this date (or ISO time; UTC if no zone).")
    ] = None,
    channel: Annotated[str | None, typer.Option(help="The merchant channel; default: the only one.")] = None,
    examples: Annotated[int, typer.Option(min=0, help="How many changed decisions to show.")] = 5,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many decisions, oldest first; default: all.")
    ] = None,
) -> None:
    """Decide stored decisions again under a draft policy and print what would change. Writes nothing.

    The draft is read as the API reads one (the same bounds on size, nesting, aliases and rules).
    """
    settings = Settings()
    try:
        start = _moment(since) if since else None
    except ValueError:
        typer.echo(f"--since {since!r} is not a date (2026-11-01) or an ISO time", err=True)
        raise typer.Exit(2) from None
    try:
        channels = settings.channels
        book = load_policy_book(settings, channels)
        target = policy_replay.merchant_channel(channels, channel)
        text = policy.read_text(encoding="utf-8")
        draft, draft_ref = policy_replay.draft_book(book, target.key, text, source=str(policy))
    except ChannelConfigError as error:
        typer.echo(f"channels refused: {error}", err=True)
        raise typer.Exit(1) from None
    except (PolicyFileError, OSError) as error:
        typer.echo(f"draft refused: {error}", err=True)
        raise typer.Exit(1) from None
    except ProblemError as error:
        typer.echo(error.detail, err=True)
        raise typer.Exit(2) from None

    async def run() -> list[str]:
        database = open_database(settings.database_url)
        try:
            summary = await policy_replay.replay(
                database,
                draft,
                target,
                draft_ref,
                since=start,
                limit=limit,
                examples=examples,
            )
        finally:
            await database.dispose()
        return describe(summary)

    for line in asyncio.run(run()):
        typer.echo(line)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@cli.command()
def openapi() -> None:
    """Print the OpenAPI document (what openapi/openapi.json holds)."""
    from app.main import create_app

    typer.echo(json.dumps(create_app().openapi(), indent=2, ensure_ascii=False))


def main() -> None:
    cli()
