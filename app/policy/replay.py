"""What-if: stored decisions decided again under a draft policy, and what would change. Pure.

Each stored decision is rebuilt from what was stored with it (the normalised order, the request without
the customer's message, `as_of`) and decided again; the new verdict is compared with the answer given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from app.domain import Market, Order, ReturnRequest
from app.errors import ValidationProblem
from app.policy.book import PolicyBook, Verdict

# What a replay compares, in the order a report lists it.
FIELDS = (
    "eligible",
    "return_window_ends",
    "resolution_options",
    "restocking_fee",
    "store_credit_bonus",
    "return_required",
    "review",
    "queue",
)


@dataclass(frozen=True)
class StoredDecision:
    decision_id: str
    order_ref: str
    as_of: datetime
    policy_ref: str  # the policy it was decided under
    answer: Mapping[str, Any]
    order_snapshot: Mapping[str, Any]
    request: Mapping[str, Any]


class FieldChange(BaseModel):
    field: str
    before: str
    after: str
    kind: str = Field(description="How it changed, for counting: `false → true`, `higher`, `later` ...")


class Example(BaseModel):
    decision_id: str
    order_ref: str
    as_of: datetime
    changes: list[FieldChange]


class FieldSummary(BaseModel):
    field: str
    changed: int
    kinds: dict[str, int] = Field(description="How many changed each way.")


class ReplaySummary(BaseModel):
    """What a draft policy would have decided differently."""

    channel: str
    draft: str = Field(description="The draft's id@version.")
    since: datetime | None
    replayed: int = Field(description="Decisions decided again.")
    changed: int = Field(description="Decisions with at least one field different.")
    unchanged: int
    not_replayable: dict[str, int] = Field(description="Stored decisions that could not be rebuilt, by why.")
    stored_under: dict[str, int] = Field(description="The policies the replayed decisions were made under.")
    fields: list[FieldSummary]
    examples: list[Example]
    truncated: bool = Field(
        description="True when the limit, or the time a replay may take, stopped it before the last decision."
    )


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _fee(policy: Mapping[str, Any]) -> tuple[Decimal, str]:
    fee = policy["restocking_fee"]
    amount = Decimal(str(fee["amount"]["amount"]))
    return amount, f"{Decimal(str(fee['max_percent'])).normalize():f}% = {amount} {fee['amount']['currency']}"


def compare(stored: Mapping[str, Any], verdict: Verdict) -> list[FieldChange]:
    """The fields of `verdict` that differ from the stored answer (a `Decision` as JSON)."""
    before = stored["policy"]
    after: dict[str, Any] = verdict.policy.model_dump(mode="json")
    changes: list[FieldChange] = []

    def changed(name: str, old: str, new: str, kind: str | None = None) -> None:
        if old != new:
            changes.append(FieldChange(field=name, before=old, after=new, kind=kind or f"{old} → {new}"))

    changed("eligible", _flag(before["eligible"]), _flag(after["eligible"]))
    old_end, new_end = before["return_window_ends"] or "none", after["return_window_ends"] or "none"
    changed("return_window_ends", old_end, new_end, "later" if new_end > old_end else "earlier")
    changed(
        "resolution_options",
        ", ".join(before["resolution_options"]) or "none",
        ", ".join(after["resolution_options"]) or "none",
    )
    (old_fee, old_text), (new_fee, new_text) = _fee(before), _fee(after)
    fee_kind = "higher" if new_fee > old_fee else "lower" if new_fee < old_fee else "percent only"
    changed("restocking_fee", old_text, new_text, fee_kind)
    changed(
        "store_credit_bonus",
        f"{before['store_credit_bonus_percent']}%",
        f"{after['store_credit_bonus_percent']}%",
    )
    changed("return_required", _flag(before["return_required"]), _flag(after["return_required"]))
    changed("review", _flag(before.get("review", False)), _flag(after["review"]))
    changed("queue", stored["queue"]["name"], verdict.queue.name)
    return changes


@dataclass(frozen=True)
class Redecided:
    """One stored decision decided again: what changed, or why it could not be rebuilt."""

    decision_id: str
    order_ref: str
    as_of: datetime
    policy_ref: str  # the policy it was decided under
    changes: list[FieldChange]
    not_replayable: str | None = None


def redecide(book: PolicyBook, market: Market, stored: StoredDecision) -> Redecided:
    """`stored` decided again under `book`, compared with the answer it was given."""
    said = Redecided(stored.decision_id, stored.order_ref, stored.as_of, stored.policy_ref, [])
    try:
        order = Order.model_validate(stored.order_snapshot)
        request = ReturnRequest.model_validate(stored.request)
    except ValidationError:
        return replace(said, not_replayable="the stored order or request no longer validates")
    try:
        verdict = book.decide(order, request, market, stored.as_of)
    except ValidationProblem:
        return replace(said, not_replayable="the request names a SKU the stored order lacks")
    return replace(said, changes=compare(stored.answer, verdict))


@dataclass
class Tally:
    """Counts what changed over decisions decided again under one draft, and keeps a few examples."""

    channel_key: str
    draft_ref: str
    since: datetime | None = None
    examples_wanted: int = 5
    replayed: int = 0
    changed: int = 0
    not_replayable: Counter[str] = field(default_factory=Counter)
    stored_under: Counter[str] = field(default_factory=Counter)
    by_field: dict[str, Counter[str]] = field(default_factory=lambda: {name: Counter() for name in FIELDS})
    examples: list[Example] = field(default_factory=list)
    truncated: bool = False
    _shown: set[tuple[str, str]] = field(default_factory=set)

    def count(self, redecided: Redecided) -> None:
        if redecided.not_replayable is not None:
            self.not_replayable[redecided.not_replayable] += 1
            return
        self.replayed += 1
        self.stored_under[redecided.policy_ref] += 1
        changes = redecided.changes
        if not changes:
            return
        self.changed += 1
        for change in changes:
            self.by_field[change.field][change.kind] += 1
        kinds = {(change.field, change.kind) for change in changes}
        # Examples show each way a decision changes before they show the same way twice.
        if len(self.examples) < self.examples_wanted and not kinds <= self._shown:
            self._shown |= kinds
            self.examples.append(
                Example(
                    decision_id=redecided.decision_id,
                    order_ref=redecided.order_ref,
                    as_of=redecided.as_of,
                    changes=changes,
                )
            )

    def summary(self) -> ReplaySummary:
        return ReplaySummary(
            channel=self.channel_key,
            draft=self.draft_ref,
            since=self.since,
            replayed=self.replayed,
            changed=self.changed,
            unchanged=self.replayed - self.changed,
            not_replayable=dict(self.not_replayable),
            stored_under=dict(self.stored_under.most_common()),
            fields=[
                FieldSummary(field=name, changed=sum(kinds.values()), kinds=dict(kinds.most_common()))
                for name, kinds in self.by_field.items()
            ],
            examples=self.examples,
            truncated=self.truncated,
        )


class Replay:
    """Decides stored decisions again under `book` and counts what changed."""

    def __init__(
        self,
        book: PolicyBook,
        market: Market,
        draft_ref: str,
        *,
        since: datetime | None = None,
        examples_wanted: int = 5,
    ) -> None:
        self.book, self.market = book, market
        self.tally = Tally(market.channel, draft_ref, since=since, examples_wanted=examples_wanted)

    def run(self, decisions: Iterable[StoredDecision]) -> None:
        for stored in decisions:
            self.add(stored)

    def add(self, stored: StoredDecision) -> None:
        self.tally.count(redecide(self.book, self.market, stored))

    def summary(self) -> ReplaySummary:
        return self.tally.summary()


def describe(summary: ReplaySummary) -> list[str]:
    """The summary as lines of text, for the command line."""
    share = f" ({summary.changed / summary.replayed:.0%})" if summary.replayed else ""
    lines = [
        f"Replayed {summary.replayed} {summary.channel} decisions"
        + (f" created since {summary.since.isoformat()}" if summary.since else "")
        + f" under the draft {summary.draft}.",
        "Stored under: " + (", ".join(f"{ref} ({n})" for ref, n in summary.stored_under.items()) or "-"),
        f"Would change: {summary.changed}{share}; unchanged: {summary.unchanged}.",
    ]
    for why, count in summary.not_replayable.items():
        lines.append(f"Not replayable: {count} ({why}).")
    for item in summary.fields:
        kinds = "; ".join(f"{kind}: {count}" for kind, count in item.kinds.items())
        lines.append(f"  {item.field:<20} {item.changed:>5}" + (f"   {kinds}" if kinds else ""))
    if summary.examples:
        lines.append("Examples:")
    for example in summary.examples:
        lines.append(
            f"  {example.order_ref} (decision {example.decision_id}, as_of {example.as_of.isoformat()})"
        )
        lines.extend(f"    {change.field}: {change.before} → {change.after}" for change in example.changes)
    if summary.truncated:
        lines.append("Stopped at the limit: newer decisions were not replayed.")
    return lines
