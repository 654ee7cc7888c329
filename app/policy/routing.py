"""Which queue takes the return, how urgently, and with which skills: a table, first matching row wins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain import Locale, Platform, QueueAssignment
from app.policy.evaluation import Trace

# Amazon lets a buyer open an A-to-z claim 48 hours after writing to the seller.
A_TO_Z_AFTER = timedelta(hours=48)


@dataclass(frozen=True)
class QueueRow:
    platform: Platform
    queue: str
    priority: int
    first_answer_within: timedelta
    skills: tuple[str, ...]
    a_to_z_risk: bool | None = None  # None: either
    review: bool | None = None  # None: either


QUEUE_TABLE: tuple[QueueRow, ...] = (
    QueueRow(
        Platform.amazon, "amazon-compliance", 1, timedelta(hours=24), ("amazon-policy",), a_to_z_risk=True
    ),
    QueueRow(
        Platform.amazon, "amazon-compliance", 2, timedelta(hours=24), ("amazon-policy",), a_to_z_risk=False
    ),
    QueueRow(
        Platform.shopify, "shopify-review", 3, timedelta(hours=48), ("retention", "review"), review=True
    ),
    QueueRow(Platform.shopify, "shopify-retention", 3, timedelta(hours=48), ("retention",), review=False),
)

LOCALE_SKILLS: dict[Locale, str] = {Locale.fr_ca: "fr"}


def assign_queue(
    platform: Platform, *, review: bool, locale: Locale, contacted_at: datetime, as_of: datetime, trace: Trace
) -> QueueAssignment:
    waited = as_of - contacted_at
    # Only Amazon has A-to-z claims; a Shopify customer waiting is a retention matter, not a claim.
    a_to_z_risk = platform is Platform.amazon and waited >= A_TO_Z_AFTER
    row = next(
        row
        for row in QUEUE_TABLE
        if row.platform is platform
        and row.a_to_z_risk in (None, a_to_z_risk)
        and row.review in (None, review)
    )
    if platform is Platform.amazon:
        trace.add(
            "routing.a_to_z_risk",
            f"customer first wrote {_hours(waited)} before as_of: "
            + (
                "may file an A-to-z claim"
                if a_to_z_risk
                else f"under {_hours(A_TO_Z_AFTER)}, no A-to-z risk yet"
            ),
        )
    due = contacted_at + row.first_answer_within
    skills = [*row.skills, *([LOCALE_SKILLS[locale]] if locale in LOCALE_SKILLS else [])]
    trace.add(
        "routing.queue",
        f"{row.queue}, priority {row.priority}, first answer due {due.isoformat()}"
        + (" (already past: answer now)" if due <= as_of else "")
        + f", skills {', '.join(skills)}",
    )
    return QueueAssignment(
        name=row.queue, priority=row.priority, sla_due_at=due, skills=skills, a_to_z_risk=a_to_z_risk
    )


def _hours(span: timedelta) -> str:
    minutes = int(max(span, timedelta(0)).total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}"
