"""Queues: A-to-z risk from 48 hours, first-answer deadlines, review queue and the French skill."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .builders import Decide, amazon_order, la, shopify_order, toronto

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
