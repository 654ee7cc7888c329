"""Replaying stored decisions under a draft: what is compared, how it is counted, what cannot be rebuilt."""

from __future__ import annotations

import uuid
from typing import Any

from app.domain import Order, ReturnRequest
from app.policy import PolicyBook
from app.policy.merchant import MerchantPolicy
from app.policy.policy_file import read_yaml
from app.policy.replay import Replay, StoredDecision, compare, describe
from app.services.returns import view_of
from app.settings import DEFAULT_MERCHANT_POLICY

from .builders import SHOPIFY_CA, line, request_for, shopify_order, toronto

AS_OF = toronto(2026, 11, 20, 12, 0)  # day 46 after the default order's delivery (Oct 5)
SHIPPED = read_yaml(DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8"), source="shipped")
BOOK = PolicyBook.load({"shopify_ca": DEFAULT_MERCHANT_POLICY})


def draft(**changes: Any) -> PolicyBook:
    policy = MerchantPolicy.model_validate({**SHIPPED, "version": "draft", **changes})
    return BOOK.with_merchant("shopify_ca", policy, source="draft")


def stored(order: Order, request: ReturnRequest, as_of: Any = AS_OF) -> StoredDecision:
    """A decision as the service stores it, made under the shipped policy."""
    verdict = BOOK.decide(order, request, SHOPIFY_CA, as_of)
    answer = {
        "policy": verdict.policy.model_dump(mode="json"),
        "queue": verdict.queue.model_dump(mode="json"),
        "order": view_of(order).model_dump(mode="json"),
    }
    return StoredDecision(
        decision_id=str(uuid.uuid4()),
        order_ref=order.order_ref,
        as_of=as_of,
        policy_ref=f"{verdict.policy.id}@{verdict.policy.version}",
        answer=answer,
        order_snapshot=order.model_dump(mode="json"),
        request=request.model_dump(mode="json", exclude={"customer_message"}),
    )


def test_the_same_policy_changes_nothing() -> None:
    order = shopify_order()
    decision = stored(order, request_for(order, reason="size_or_fit"))

    replay = Replay(BOOK, SHOPIFY_CA, "shopify-ca-default@2026.11")
    replay.add(decision)

    summary = replay.summary()
    assert (summary.replayed, summary.changed, summary.unchanged) == (1, 0, 1)
    assert summary.examples == []


def test_a_longer_window_a_lower_fee_and_a_higher_bonus_are_each_reported() -> None:
    order = shopify_order()
    request = request_for(order, reason="size_or_fit")
    book = draft(
        window={"days": 60},
        defaults={**SHIPPED["defaults"], "store_credit_bonus_percent": "15"},
    )

    changes = compare(stored(order, request).answer, book.decide(order, request, SHOPIFY_CA, AS_OF))

    assert [(change.field, change.before, change.after, change.kind) for change in changes] == [
        ("eligible", "false", "true", "false → true"),
        ("return_window_ends", "2026-11-04", "2026-12-04", "later"),
        (
            "resolution_options",
            "none",
            "exchange, store_credit, refund",
            "none → exchange, store_credit, refund",
        ),
        ("restocking_fee", "0% = 0.00 CAD", "15% = 2.78 CAD", "higher"),
        ("store_credit_bonus", "0%", "15%", "0% → 15%"),
    ]


def test_queue_review_and_returnless_changes_are_reported() -> None:
    order = shopify_order(lines=[line("KET-01", "150.00 CAD")])
    request = request_for(order, reason="damaged")
    rules = [
        {
            "id": "returnless",
            "when": {"fault": "seller", "returned_value": {"at_most": "200"}},
            "then": {"returnless": True},
        },
        {"id": "review.high_value", "when": {"returned_value": {"over": "100.00"}}, "then": {"review": True}},
    ]

    changes = compare(
        stored(order, request, toronto(2026, 10, 20)).answer,
        draft(rules=rules).decide(order, request, SHOPIFY_CA, toronto(2026, 10, 20)),
    )

    assert {change.field: change.kind for change in changes} == {
        "return_required": "true → false",
        "review": "false → true",
        "queue": "shopify-retention → shopify-review",
    }


def test_the_summary_counts_each_way_and_keeps_varied_examples() -> None:
    orders = [shopify_order(order_ref=f"#{number}") for number in range(1001, 1005)]
    decisions = [
        stored(order, request_for(order, reason="size_or_fit"), toronto(2026, 10, 20)) for order in orders
    ]
    decisions.append(stored(orders[0], request_for(orders[0], reason="defective"), toronto(2026, 10, 20)))
    rules = [
        {**rule, "then": {"restocking_fee_percent": "5"}} if rule["id"] == "customer_fault_fee" else rule
        for rule in SHIPPED["rules"]
    ]
    book = draft(rules=rules)

    replay = Replay(book, SHOPIFY_CA, "shopify-ca-default@draft", examples_wanted=3)
    replay.run(decisions)
    summary = replay.summary()

    assert (summary.replayed, summary.changed, summary.unchanged) == (5, 4, 1)
    fee = next(item for item in summary.fields if item.field == "restocking_fee")
    assert (fee.changed, fee.kinds) == (4, {"lower": 4})
    assert summary.stored_under == {"shopify-ca-default@2026.11": 5}
    assert len(summary.examples) == 1  # the other three changed the same way
    text = "\n".join(describe(summary))
    assert "Would change: 4 (80%); unchanged: 1." in text
    assert "restocking_fee: 15% = 2.78 CAD → 5% = 0.93 CAD" in text


def test_a_decision_that_cannot_be_rebuilt_is_counted_not_fatal() -> None:
    order = shopify_order()
    decision = stored(order, request_for(order, items=[{"sku": "MUG-01"}]))
    gone = StoredDecision(
        **{**decision.__dict__, "request": {**decision.request, "items": [{"sku": "GONE"}]}}
    )
    broken = StoredDecision(**{**decision.__dict__, "order_snapshot": {"order_ref": "#1001"}})

    replay = Replay(BOOK, SHOPIFY_CA, "x@1")
    replay.run([decision, gone, broken])

    summary = replay.summary()
    assert summary.replayed == 1
    assert summary.not_replayable == {
        "the request names a SKU the stored order lacks": 1,
        "the stored order or request no longer validates": 1,
    }
