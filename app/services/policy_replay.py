"""What-if replays: a channel's stored decisions decided again under a draft policy. Nothing is written."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from app.channels import Channel, ShopifyChannel
from app.db import decisions
from app.db.database import Database
from app.errors import ValidationProblem
from app.policy import PolicyBook
from app.policy.merchant import MerchantPolicy
from app.policy.policy_file import parse_policy
from app.policy.replay import Replay, ReplaySummary, StoredDecision

PAGE = 500


def merchant_channel(channels: Mapping[str, Channel], key: str | None) -> ShopifyChannel:
    """The merchant channel named `key`, or the only one when `key` is None."""
    merchant = {name: channel for name, channel in channels.items() if isinstance(channel, ShopifyChannel)}
    if key is None and len(merchant) == 1:
        return next(iter(merchant.values()))
    if key is not None and key in merchant:
        return merchant[key]
    known = ", ".join(sorted(merchant)) or "none"
    problem = "name one" if key is None else f"{key!r} is not one (a platform's policy is not a draft)"
    raise ValidationProblem(
        f"A replay runs on a merchant channel ({known}): {problem}.",
        errors=[
            {"loc": ["body", "channel"], "msg": f"merchant channels: {known}", "type": "unknown_channel"}
        ],
    )


def draft_book(
    book: PolicyBook, channel: ShopifyChannel, text: str, *, source: str
) -> tuple[PolicyBook, str]:
    """`book` with the draft in `text` for `channel`, and the draft's id@version.

    Raises `PolicyFileError` naming `source`, the line and the problem when the draft is not a policy.
    """
    draft = parse_policy(text, MerchantPolicy, source=source)
    return book.with_merchant(channel.key, draft, source=source), draft.ref


async def replay(
    database: Database,
    book: PolicyBook,
    channel: ShopifyChannel,
    draft_ref: str,
    *,
    since: datetime | None = None,
    limit: int | None = None,
    examples: int = 5,
) -> ReplaySummary:
    """Decide `channel`'s stored decisions (oldest first, at most `limit`) again with `book`."""
    run = Replay(book, channel.market, draft_ref, since=since, examples_wanted=examples)
    after: decisions.PagePosition | None = None
    read = 0
    while True:
        size = PAGE if limit is None else min(PAGE, limit - read)
        # A session per page: no connection is held while the page is decided.
        async with database.reading() as session:
            rows = await decisions.for_replay(
                session, channel.key, since=since, after=after, limit=max(size, 1)
            )
        if size == 0:
            run.truncated = bool(rows)
            return run.summary()
        if not rows:
            return run.summary()
        # Deciding is CPU work (templates included): off the event loop, so other requests go on.
        await asyncio.to_thread(run.run, [_stored(row) for row in rows])
        read += len(rows)
        after = decisions.PagePosition(rows[-1].created_at, rows[-1].id)


def _stored(row: Row[Any]) -> StoredDecision:
    return StoredDecision(
        decision_id=str(row.id),
        order_ref=row.order_ref,
        as_of=row.as_of,
        policy_ref=f"{row.policy_id}@{row.policy_version}",
        answer=row.answer,
        order_snapshot=row.order_snapshot,
        request=row.request,
    )
