"""Which queue takes the return, how urgently, and with which skills: a table of rules, read from YAML.

For each platform the first row whose conditions all hold wins. The table is checked when it loads so
that every return finds a row: the last row of each platform has no conditions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.domain import Locale, Platform, QueueAssignment
from app.policy.evaluation import Trace

ROUTING_FILE: Traversable = files("app.policy") / "data" / "routing.yaml"


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QueueConditions(_Data):
    a_to_z_risk: bool | None = None
    review: bool | None = None
    eligible: bool | None = None
    locale: list[Locale] | None = Field(default=None, min_length=1)

    @property
    def empty(self) -> bool:
        return not self.model_fields_set

    def hold(self, *, a_to_z_risk: bool, review: bool, eligible: bool, locale: Locale) -> bool:
        return (
            self.a_to_z_risk in (None, a_to_z_risk)
            and self.review in (None, review)
            and self.eligible in (None, eligible)
            and (self.locale is None or locale in self.locale)
        )


class QueueRow(_Data):
    platform: Platform
    when: QueueConditions = QueueConditions()
    queue: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    priority: int = Field(ge=1)
    first_answer_within_hours: int = Field(gt=0)
    skills: list[str] = Field(min_length=1)

    @property
    def first_answer_within(self) -> timedelta:
        return timedelta(hours=self.first_answer_within_hours)


class RoutingTable(_Data):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)
    version: str = Field(min_length=1, max_length=50)
    a_to_z_after_hours: int = Field(gt=0)
    locale_skills: dict[Locale, str] = Field(default_factory=dict)
    queues: list[QueueRow] = Field(min_length=1)

    @field_validator("queues")
    @classmethod
    def _every_return_finds_a_queue(cls, queues: list[QueueRow]) -> list[QueueRow]:
        for platform in Platform:
            rows = [row for row in queues if row.platform is platform]
            if not rows or not rows[-1].when.empty:
                raise ValueError(f"the last {platform} row has no conditions, so every return finds a queue")
        return queues

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def a_to_z_after(self) -> timedelta:
        return timedelta(hours=self.a_to_z_after_hours)


def assign_queue(
    table: RoutingTable,
    platform: Platform,
    *,
    review: bool,
    eligible: bool,
    locale: Locale,
    contacted_at: datetime,
    as_of: datetime,
    trace: Trace,
) -> QueueAssignment:
    steps = Trace(table.ref)
    waited = as_of - contacted_at
    # Only Amazon has A-to-z claims; a Shopify customer waiting is a retention matter, not a claim.
    a_to_z_risk = platform is Platform.amazon and waited >= table.a_to_z_after
    row = next(
        row
        for row in table.queues
        if row.platform is platform
        and row.when.hold(a_to_z_risk=a_to_z_risk, review=review, eligible=eligible, locale=locale)
    )
    if platform is Platform.amazon:
        steps.add(
            "routing.a_to_z_risk",
            f"customer first wrote {_hours(waited)} before as_of: "
            + (
                "may file an A-to-z claim"
                if a_to_z_risk
                else f"under {_hours(table.a_to_z_after)}, no A-to-z risk yet"
            ),
        )
    due = contacted_at + row.first_answer_within
    extra = table.locale_skills.get(locale)
    skills = [*row.skills, *([extra] if extra and extra not in row.skills else [])]
    steps.add(
        "routing.queue",
        f"{row.queue}, priority {row.priority}, first answer due {due.isoformat()}"
        + (" (already past: answer now)" if due <= as_of else "")
        + f", skills {', '.join(skills)}",
    )
    trace.steps.extend(steps.steps)
    return QueueAssignment(
        name=row.queue, priority=row.priority, sla_due_at=due, skills=skills, a_to_z_risk=a_to_z_risk
    )


def _hours(span: timedelta) -> str:
    minutes = int(max(span, timedelta(0)).total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}"
