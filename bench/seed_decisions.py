"""Store a few hundred varied sandbox decisions in a local database, through the API, for a replay.

    .venv/bin/python bench/seed_decisions.py --database ./replay-demo.db
    DATABASE_URL=sqlite+aiosqlite:///./replay-demo.db .venv/bin/python -m app replay \
        --policy bench/drafts/shopify-ca-45-days.yaml

Every sandbox Shopify order (and the Amazon ones, which a merchant replay leaves alone) is routed for
every reason at several moments after delivery, in both languages; runs in-process (ASGI), no network.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from app.db.migrate import upgrade
from app.domain import Reason
from app.main import create_app
from app.runtime import Runtime
from app.services import api_keys
from app.services.api_keys import Scope
from app.settings import Settings

SHOPIFY_ORDERS = ("#1001", "#1002", "#1003", "#1004", "#1005", "#1006", "#1007")
AMAZON_ORDERS = ("113-4567890-1234567", "112-3344556-7788990", "115-6677889-9001122")
# Days after the sandbox's "today" (2026-11-26): in the window, near its end, past it, past 90 days.
OFFSETS = (0, 10, 25, 40, 95)
LOCALES = (None, "fr-CA", "en-CA")


async def seed(database: Path) -> tuple[int, int]:
    url = f"sqlite+aiosqlite:///{database}"
    settings = Settings(_env_file=None, database_url=url, log_level="WARNING", log_format="json")  # type: ignore[call-arg]
    app = create_app(settings)
    today = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    stored = refused = 0
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        async with runtime.database.transaction() as session:
            _row, key = await api_keys.issue(session, "replay bench", {Scope.route})
        headers = {"Authorization": f"Bearer {key}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            cases = itertools.product(SHOPIFY_ORDERS + AMAZON_ORDERS, list(Reason), OFFSETS)
            for index, (order_ref, reason, offset) in enumerate(cases):
                as_of = today + timedelta(days=offset, hours=index % 24)
                body = {
                    "order_ref": order_ref,
                    "reason": reason.value,
                    "ticket_id": f"BENCH-{index}",
                    "as_of": as_of.isoformat(),
                    "customer_contacted_at": (as_of - timedelta(hours=index % 60)).isoformat(),
                }
                locale = LOCALES[index % len(LOCALES)]
                if locale and order_ref.startswith("#"):
                    body["locale"] = locale
                answer = await client.post("/v1/returns/route", json=body, headers=headers)
                if answer.status_code == 201:
                    stored += 1
                else:
                    refused += 1
    return stored, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--database", type=Path, default=Path("replay-demo.db"))
    arguments = parser.parse_args()
    upgrade(f"sqlite+aiosqlite:///{arguments.database}")  # Alembic runs its own event loop: before ours
    stored, refused = asyncio.run(seed(arguments.database))
    print(f"stored {stored} decisions in {arguments.database} ({refused} refused)")  # noqa: T201


if __name__ == "__main__":
    main()
