"""The `outcomes` commands' work: an import from a file, a fetch through the Reports API."""

from __future__ import annotations

from app.channels import AmazonChannel
from app.db.engine import open_database
from app.runtime import open_runtime
from app.services import amazon_import
from app.services.amazon_import import ImportRunning
from app.services.outcome_jobs import OutcomeJobs, Schedule
from app.settings import Settings


async def import_file(settings: Settings, channel: str, content: bytes, name: str) -> tuple[bool, list[str]]:
    """(succeeded, lines to print) of importing a report saved by hand."""
    channels = settings.channels  # built once: each reading reads the channels and secret files again
    known = channels.get(channel)
    if not isinstance(known, AmazonChannel):
        amazon = ", ".join(key for key, c in channels.items() if isinstance(c, AmazonChannel))
        return False, [f"{channel!r} is not an Amazon channel; Amazon channels: {amazon or 'none'}"]
    database = open_database(settings.database_url)
    try:
        summary = await amazon_import.import_document(
            database,
            channel=channel,
            currency=known.currency,
            content=content,
            compression=None,
            report=name,
            source="file",
        )
    except ImportRunning as error:
        return False, [str(error)]
    finally:
        await database.dispose()
    return summary.status == "succeeded", summary.describe()


async def fetch_report(settings: Settings, channel: str) -> tuple[bool, list[str]]:
    async with open_runtime(settings) as runtime:
        if channel not in runtime.reports:
            live = ", ".join(runtime.reports) or "none"
            return False, [f"{channel!r} is not a live Amazon channel; live Amazon channels: {live}"]
        jobs = OutcomeJobs(
            runtime.database,
            runtime.connectors,
            runtime.reports,
            runtime.channels,
            Schedule(import_days=settings.amazon_returns_report_days),
        )
        summary = await jobs.import_amazon(channel, force=True)
    if summary is None:
        return False, [f"an import of {channel}'s returns report is running already"]
    return summary.status == "succeeded", summary.describe()
