"""What a policy evaluation hands to the rest of the decision, and the trace it keeps on the way."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain import Classification, ExplanationStep, Fault, Order, PolicyResult


class Trace:
    """The explanation being written: every rule that decided something, in order, under one policy."""

    def __init__(self, policy_ref: str, steps: tuple[ExplanationStep, ...] = ()) -> None:
        self.policy_ref = policy_ref
        self.steps: list[ExplanationStep] = list(steps)

    def add(self, rule: str, result: str) -> None:
        self.steps.append(ExplanationStep(rule=rule, result=result, policy=self.policy_ref))


def explain_missing(order: Order, trace: Trace) -> None:
    """What the channel's answer left out and what was taken instead: a decision made on it says so."""
    for note in order.missing:
        trace.add("order.missing", note)


@dataclass(frozen=True)
class Evaluation:
    result: PolicyResult
    classification: Classification
    fault: Fault
    scenario: str  # which reply the situation calls for, e.g. "damaged", "late", "returnless"
    template_set: str  # the directory of reply templates, e.g. "amazon-us"
    item_titles: tuple[str, ...]  # of the lines the customer asked about, for the reply
    final_sale: bool  # ineligible only because every line is final sale
    steps: tuple[ExplanationStep, ...]
    kept_titles: tuple[str, ...] = ()  # lines asked about that cannot come back while others can

    @property
    def policy_ref(self) -> str:
        return f"{self.result.id}@{self.result.version}"
