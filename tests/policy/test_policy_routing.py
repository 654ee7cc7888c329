"""Queues: A-to-z risk from 48 hours, first-answer deadlines, review queue and the French skill."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from app.policy import PolicyBook, PolicyFileError
from app.settings import DEFAULT_MERCHANT_POLICY, DEFAULT_ROUTING_FILE

from .builders import Decide, amazon_order, la, shopify_order, toronto
from .test_policy_book import line_of

AMAZON_AS_OF = la(2026, 10, 20, 12, 0)
SHOPIFY_AS_OF = toronto(2026, 10, 20, 12, 0)


@pytest.mark.parametrize(
    ("waited", "priority", "risk"),
    [(timedelta(hours=47, minutes=59), 2, False), (timedelta(hours=48), 1, True)],
)
def test_amazon_a_to_z_risk_from_48_hours(
    decide: Decide, waited: timedelta, priority: int, risk: bool
) -> None:
    contacted = AMAZON_AS_OF - waited

    verdict = decide(amazon_order(), AMAZON_AS_OF, customer_contacted_at=contacted)

    assert verdict.queue.name == "amazon-compliance"
    assert verdict.queue.priority == priority
    assert verdict.queue.a_to_z_risk is risk
    assert verdict.queue.sla_due_at == contacted + timedelta(hours=24)
    assert verdict.queue.skills == ["amazon-policy"]


def test_first_answer_runs_from_as_of_when_contact_time_is_absent(decide: Decide) -> None:
    verdict = decide(amazon_order(), AMAZON_AS_OF)

    assert verdict.queue.sla_due_at == AMAZON_AS_OF + timedelta(hours=24)
    assert verdict.queue.a_to_z_risk is False


def test_past_deadline_is_flagged_in_the_explanation(decide: Decide) -> None:
    verdict = decide(amazon_order(), AMAZON_AS_OF, customer_contacted_at=AMAZON_AS_OF - timedelta(hours=30))

    queue_step = next(step for step in verdict.explanation if step.rule == "routing.queue")
    assert "already past: answer now" in queue_step.result


def test_shopify_retention_queue(decide: Decide) -> None:
    contacted = SHOPIFY_AS_OF - timedelta(hours=72)  # long wait, but A-to-z claims are Amazon's only

    verdict = decide(shopify_order(), SHOPIFY_AS_OF, customer_contacted_at=contacted)

    assert verdict.queue.name == "shopify-retention"
    assert verdict.queue.priority == 3
    assert verdict.queue.sla_due_at == contacted + timedelta(hours=48)
    assert verdict.queue.skills == ["retention"]
    assert verdict.queue.a_to_z_risk is False


def test_shopify_review_queue_in_french(decide: Decide) -> None:
    earlier = [SHOPIFY_AS_OF - timedelta(days=days) for days in (5, 50, 100)]

    verdict = decide(shopify_order(ship_to_region="QC", earlier_returns_at=earlier), SHOPIFY_AS_OF)

    assert verdict.queue.name == "shopify-review"
    assert verdict.queue.priority == 3
    assert verdict.queue.skills == ["retention", "review", "fr"]
    assert verdict.queue.sla_due_at == SHOPIFY_AS_OF + timedelta(hours=48)


def _routing_with(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_ROUTING_FILE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "routing.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_the_queue_table_is_configurable(tmp_path: Path) -> None:
    path = _routing_with(
        tmp_path,
        "  - platform: shopify\n    when: {review: true}",
        "  - platform: shopify\n    when: {eligible: false}\n    queue: shopify-closed\n    priority: 4\n"
        "    first_answer_within_hours: 72\n    skills: [retention]\n"
        "  - platform: shopify\n    when: {review: true}",
    )
    book = Decide(PolicyBook.load({"shopify_ca": DEFAULT_MERCHANT_POLICY}, routing_file=path))

    late = book(shopify_order(), toronto(2026, 12, 20, 12, 0), reason="size_or_fit")
    in_window = book(shopify_order(), SHOPIFY_AS_OF, reason="size_or_fit")

    assert (late.queue.name, late.queue.priority) == ("shopify-closed", 4)
    assert late.queue.sla_due_at == toronto(2026, 12, 20, 12, 0) + timedelta(hours=72)
    assert in_window.queue.name == "shopify-retention"


@pytest.mark.parametrize(
    ("old", "new", "marker", "problem"),
    [
        (
            "    skills: [retention]\n",
            "    skills: [retention]\n    when: {review: false}\n",
            "queues:",
            "last shopify row",
        ),
        ("a_to_z_after_hours: 48", "a_to_z_after_hours: two days", "a_to_z_after_hours", "valid integer"),
        ("    priority: 1\n", "    priority: 0\n", "priority: 0", "queues[0].priority"),
        (
            "    when: {a_to_z_risk: true}",
            "    when: {a_to_z_risk: true, moon: full}",
            "moon",
            "queues[0].when.moon",
        ),
    ],
)
def test_a_bad_queue_table_is_refused_with_its_line(
    tmp_path: Path, old: str, new: str, marker: str, problem: str
) -> None:
    path = _routing_with(tmp_path, old, new)

    with pytest.raises(PolicyFileError) as raised:
        PolicyBook.load({}, routing_file=path)

    assert raised.value.source == str(path)
    assert raised.value.line == line_of(path, marker)
    assert problem in raised.value.problem
