"""The whole decision for one request: a pure function of the order, request, policies and `as_of`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from app.domain import (
    Classification,
    ExplanationStep,
    Fault,
    Locale,
    Market,
    Order,
    Platform,
    PolicyResult,
    QueueAssignment,
    Reply,
    ReturnRequest,
)
from app.policy.amazon_us import AmazonUsPolicy, evaluate_amazon_us
from app.policy.evaluation import Evaluation, Trace
from app.policy.language import AMAZON_US_LOCALE, amazon_us_locale, merchant_locale
from app.policy.lint import COMPLIANCE_FILE, ComplianceRules
from app.policy.merchant import MERCHANT_SCENARIOS, MerchantPolicy, evaluate_merchant
from app.policy.policy_file import PolicyFileError, read_policy_file
from app.policy.replies import TEMPLATES, ReplyBook
from app.policy.routing import ROUTING_FILE, RoutingTable, assign_queue

AMAZON_US_POLICY: Traversable = files("app.policy") / "data" / "amazon-us.yaml"


@dataclass(frozen=True)
class Verdict:
    """Everything the policy decides for one request."""

    classification: Classification
    fault: Fault
    locale: Locale
    policy: PolicyResult
    template: Reply
    queue: QueueAssignment
    explanation: list[ExplanationStep]  # every rule that decided something, in order


@dataclass(frozen=True)
class Shared:
    """What both kinds of policy use once they have decided: the reply templates and the queue table."""

    replies: ReplyBook
    routing: RoutingTable


def decide_platform(
    amazon_us: AmazonUsPolicy,
    shared: Shared,
    order: Order,
    request: ReturnRequest,
    market: Market,
    as_of: datetime,
) -> Verdict:
    """An Amazon US decision. Its inputs hold no merchant policy: none can reach Amazon's rules."""
    evaluation = evaluate_amazon_us(amazon_us, order, request, market, as_of)
    trace = Trace(evaluation.policy_ref, evaluation.steps)
    locale = amazon_us_locale(request, trace)
    return _finish(evaluation, trace, locale, order, request, Platform.amazon, shared, as_of)


def decide_merchant(
    policy: MerchantPolicy,
    shared: Shared,
    order: Order,
    request: ReturnRequest,
    market: Market,
    as_of: datetime,
) -> Verdict:
    """A decision under the store's own policy."""
    evaluation = evaluate_merchant(policy, order, request, market, as_of)
    trace = Trace(evaluation.policy_ref, evaluation.steps)
    locale = merchant_locale(order, request, policy.locales, trace)
    return _finish(evaluation, trace, locale, order, request, Platform.shopify, shared, as_of)


def _finish(
    evaluation: Evaluation,
    trace: Trace,
    locale: Locale,
    order: Order,
    request: ReturnRequest,
    platform: Platform,
    shared: Shared,
    as_of: datetime,
) -> Verdict:
    queue = assign_queue(
        shared.routing,
        platform,
        review=evaluation.result.review,
        eligible=evaluation.result.eligible,
        locale=locale,
        contacted_at=request.customer_contacted_at or as_of,
        as_of=as_of,
        trace=trace,
    )
    template = shared.replies.render(evaluation, order, locale)
    trace.add("reply.template", template.id)
    return Verdict(
        classification=evaluation.classification,
        fault=evaluation.fault,
        locale=locale,
        policy=evaluation.result,
        template=template,
        queue=queue,
        explanation=trace.steps,
    )


class PolicyBook:
    """The policies, reply templates and queue table, loaded and checked once at start-up."""

    def __init__(
        self,
        amazon_us: AmazonUsPolicy,
        merchant: Mapping[str, MerchantPolicy],
        replies: ReplyBook,
        routing: RoutingTable,
    ) -> None:
        self._amazon_us = amazon_us
        self._merchant = dict(merchant)
        self._shared = Shared(replies=replies, routing=routing)

    @classmethod
    def load(
        cls,
        merchant_policy_files: Mapping[str, Path],
        *,
        amazon_us_file: Path | Traversable = AMAZON_US_POLICY,
        templates: Path | Traversable = TEMPLATES,
        routing_file: Path | Traversable = ROUTING_FILE,
        compliance_file: Path | Traversable = COMPLIANCE_FILE,
    ) -> PolicyBook:
        """`merchant_policy_files` maps a merchant channel's key to its policy file.

        Raises `PolicyFileError` naming the file, the line and the problem; a policy whose replies are
        missing is refused here too, so no request ever meets a missing template.
        """
        amazon_us = read_policy_file(amazon_us_file, AmazonUsPolicy)
        routing = read_policy_file(routing_file, RoutingTable)
        compliance = read_policy_file(compliance_file, ComplianceRules)
        replies = ReplyBook.load(templates, amazon_sets={amazon_us.template_set}, compliance=compliance)
        missing = replies.missing(
            amazon_us.template_set, sorted(amazon_us.reply_scenarios), [AMAZON_US_LOCALE]
        )
        if missing:
            raise PolicyFileError(str(amazon_us_file), f"reply templates missing: {', '.join(missing)}")
        book = cls(amazon_us, {}, replies, routing)
        for key, path in merchant_policy_files.items():
            book = book.with_merchant(key, read_policy_file(path, MerchantPolicy), source=str(path))
        return book

    def with_merchant(self, channel_key: str, policy: MerchantPolicy, *, source: str) -> PolicyBook:
        """This book with `policy` for `channel_key` (a draft, for a replay); Amazon's side is unchanged.

        Raises `PolicyFileError` (naming `source`) when the policy's reply templates are missing.
        """
        if policy.id == self._amazon_us.id:
            raise PolicyFileError(source, f"id {policy.id!r} is the platform policy's")
        replies = self._shared.replies
        missing = replies.missing(policy.template_set, MERCHANT_SCENARIOS, policy.locales.offered)
        if missing:
            raise PolicyFileError(source, f"reply templates missing: {', '.join(missing)}")
        return PolicyBook(
            self._amazon_us,
            {**self._merchant, channel_key: policy},
            self._shared.replies,
            self._shared.routing,
        )

    def merchant_policy(self, channel_key: str) -> MerchantPolicy:
        try:
            return self._merchant[channel_key]
        except KeyError:
            raise LookupError(f"no merchant policy loaded for channel {channel_key!r}") from None

    def decide(self, order: Order, request: ReturnRequest, market: Market, as_of: datetime) -> Verdict:
        """The decision for `request` about `order`, sold in `market`, at `as_of` (aware); no I/O, no clock.

        Raises `ValidationProblem` only, when the request names a SKU that is not on the order.
        """
        if market.platform is Platform.amazon:
            return decide_platform(self._amazon_us, self._shared, order, request, market, as_of)
        policy = self.merchant_policy(market.channel)
        return decide_merchant(policy, self._shared, order, request, market, as_of)
