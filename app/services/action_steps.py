"""What the action runners share: one committed, compare-and-set step at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from app.action_state import ActionState
from app.db import actions as rows
from app.db.database import Database
from app.db.tables import Action
from app.domain import ActionError
from app.errors import ProblemError, UpstreamAuthFailed, UpstreamError, UpstreamRateLimited

log = structlog.get_logger(__name__)

# How long a mutation whose answer was lost may take to show in a read-back. After that, not
# finding it means it never happened, and the decision is free again.
SETTLE = timedelta(minutes=2)
# Shopify's clock and ours differ a little: a read-back looks this far before the submission.
CLOCK_SKEW = timedelta(minutes=1)


class Lost(Exception):
    """Another runner moved the action first."""


@dataclass
class Step:
    database: Database
    action: Action

    async def move(self, status: ActionState, **values: Any) -> None:
        now = datetime.now(UTC)
        async with self.database.transaction() as session:
            if not await rows.transition(session, self.action, status, updated_at=now, **values):
                raise Lost
        for key, value in {"status": status, "updated_at": now, **values}.items():
            setattr(self.action, key, value)

    async def fail(self, error: ProblemError) -> None:
        log.info("action_failed", action_id=str(self.action.id), code=error.code)
        await self.move(
            ActionState.failed, error=ActionError(code=error.code, detail=error.detail, errors=error.errors)
        )

    async def reload(self) -> Action:
        async with self.database.reading() as session:
            found = await rows.get(session, self.action.id)
        assert found is not None
        return found

    def settled(self) -> bool:
        submitted = self.action.submitted_at or self.action.created_at
        return datetime.now(UTC) - submitted >= SETTLE


def never_ran(error: UpstreamError) -> bool:
    """A refusal before Shopify ran anything: the action failed, the decision is free again."""
    return isinstance(error, UpstreamRateLimited | UpstreamAuthFailed)
