"""The whole decision for one request: a pure function of the order, request, policies and `as_of`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

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
from app.policy.amazon import AmazonPolicy, evaluate_amazon
from app.policy.evaluation import Evaluation, Trace
from app.policy.language import amazon_locale, merchant_locale
from app.policy.lint import COMPLIANCE_FILES, ComplianceRules
from app.policy.merchant import MERCHANT_SCENARIOS, MerchantPolicy, evaluate_merchant
from app.policy.policy_file import PolicyFileError, read_policy_file
from app.policy.replies import TEMPLATES, ReplyBook
from app.policy.routing import ROUTING_FILE, RoutingTable, assign_queue

DATA = Path(__file__).parent / "data"
# The policies the service ships, by id, with the kind of channel each decides for.
BUILT_IN_POLICIES: dict[str, Literal["amazon", "shopify"]] = {
    "amazon-us": "amazon",
    "amazon-ca": "amazon",
    "shopify-ca-default": "shopify",
}


def built_in_policy_file(policy_id: str) -> Path:
    return DATA / f"{policy_id}.yaml"


AMAZON_POLICIES = tuple(
    built_in_policy_file(id) for id, kind in BUILT_IN_POLICIES.items() if kind == "amazon"
)


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
    amazon: AmazonPolicy,
    shared: Shared,
    order: Order,
    request: ReturnRequest,
    market: Market,
    as_of: datetime,
) -> Verdict:
    """An Amazon decision. Its inputs hold no merchant policy: none can reach Amazon's rules."""
    evaluation = evaluate_amazon(amazon, order, request, market, as_of)
    trace = Trace(evaluation.policy_ref, evaluation.steps)
    locale = amazon_locale(order, request, amazon.locales.narrowed(market.locales), amazon.name, trace)
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
    locale = merchant_locale(order, request, policy.locales.narrowed(market.locales), trace)
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
        amazon: Mapping[str, AmazonPolicy],
        merchant: Mapping[str, MerchantPolicy],
        replies: ReplyBook,
        routing: RoutingTable,
    ) -> None:
        self._amazon = dict(amazon)  # by policy id: a marketplace's rules, whichever channel sells there
        self._merchant = dict(merchant)  # by channel key: each store its own file
        self._shared = Shared(replies=replies, routing=routing)

    @classmethod
    def load(
        cls,
        merchant_policy_files: Mapping[str, Path],
        *,
        amazon_files: Iterable[Path | Traversable] = AMAZON_POLICIES,
        templates: Path | Traversable = TEMPLATES,
        routing_file: Path | Traversable = ROUTING_FILE,
        compliance_files: Iterable[Path | Traversable] = (),
    ) -> PolicyBook:
        """`merchant_policy_files` maps a merchant channel's key to its policy file; `amazon_files` are
        the platform policies (the shipped ones and any a channel names); `compliance_files` replace the
        shipped communication rules of the same id.

        Raises `PolicyFileError` naming the file, the line and the problem; a policy whose replies are
        missing is refused here too, so no request ever meets a missing template.
        """
        amazon, sources = _amazon_policies(amazon_files)
        routing = read_policy_file(routing_file, RoutingTable)
        compliance = {
            rules.id: rules
            for rules in (
                read_policy_file(path, ComplianceRules) for path in (*COMPLIANCE_FILES, *compliance_files)
            )
        }
        checked: dict[str, ComplianceRules] = {}
        for policy in amazon.values():
            rules = compliance.get(policy.compliance)
            if rules is None:
                known = ", ".join(sorted(compliance))
                raise PolicyFileError(
                    sources[policy.id], f"compliance {policy.compliance!r} is not one of: {known}"
                )
            if checked.setdefault(policy.template_set, rules) is not rules:
                raise PolicyFileError(
                    sources[policy.id], f"template set {policy.template_set} is checked by other rules"
                )
        replies = ReplyBook.load(templates, amazon_sets=checked)
        for policy in amazon.values():
            missing = replies.missing(
                policy.template_set, sorted(policy.reply_scenarios), policy.locales.offered
            )
            if missing:
                raise PolicyFileError(sources[policy.id], f"reply templates missing: {', '.join(missing)}")
        book = cls(amazon, {}, replies, routing)
        for key, path in merchant_policy_files.items():
            book = book.with_merchant(key, read_policy_file(path, MerchantPolicy), source=str(path))
        return book

    def with_merchant(self, channel_key: str, policy: MerchantPolicy, *, source: str) -> PolicyBook:
        """This book with `policy` for `channel_key` (a draft, for a replay); Amazon's side is unchanged.

        Raises `PolicyFileError` (naming `source`) when the policy's reply templates are missing.
        """
        if policy.id in self._amazon:
            raise PolicyFileError(source, f"id {policy.id!r} is a platform policy's")
        replies = self._shared.replies
        missing = replies.missing(policy.template_set, MERCHANT_SCENARIOS, policy.locales.offered)
        if missing:
            raise PolicyFileError(source, f"reply templates missing: {', '.join(missing)}")
        return PolicyBook(
            self._amazon,
            {**self._merchant, channel_key: policy},
            self._shared.replies,
            self._shared.routing,
        )

    def merchant_policy(self, channel_key: str) -> MerchantPolicy:
        try:
            return self._merchant[channel_key]
        except KeyError:
            raise LookupError(f"no merchant policy loaded for channel {channel_key!r}") from None

    def amazon_policy(self, market: Market) -> AmazonPolicy:
        try:
            return self._amazon[market.policy or ""]
        except KeyError:
            known = ", ".join(sorted(self._amazon))
            raise LookupError(
                f"channel {market.channel!r} names platform policy {market.policy!r}; loaded: {known}"
            ) from None

    def check(self, market: Market, *, source: str) -> None:
        """That `market` can be decided: its policy is loaded, replies in the locales the channel names,
        and states its amounts in the channel's currency. Raises `PolicyFileError` naming `source`."""
        try:
            policy = (
                self.amazon_policy(market)
                if market.platform is Platform.amazon
                else self.merchant_policy(market.channel)
            )
        except LookupError as exc:
            raise PolicyFileError(source, str(exc)) from None
        unknown = [locale.value for locale in market.locales if locale not in policy.locales.offered]
        if unknown:
            offered = ", ".join(locale.value for locale in policy.locales.offered)
            raise PolicyFileError(
                source, f"LOCALES names {', '.join(unknown)}; policy {policy.id} replies in {offered}"
            )
        if policy.currency is not None and market.currency not in (None, policy.currency):
            raise PolicyFileError(
                source,
                f"policy {policy.id} states its amounts in {policy.currency}, the channel's currency is "
                f"{market.currency}: thresholds are never compared across currencies",
            )

    def decide(self, order: Order, request: ReturnRequest, market: Market, as_of: datetime) -> Verdict:
        """The decision for `request` about `order`, sold in `market`, at `as_of` (aware); no I/O, no clock.

        Raises `ValidationProblem` only, when the request names a line that is not on the order.
        """
        if market.platform is Platform.amazon:
            return decide_platform(self.amazon_policy(market), self._shared, order, request, market, as_of)
        policy = self.merchant_policy(market.channel)
        return decide_merchant(policy, self._shared, order, request, market, as_of)


def _amazon_policies(
    files: Iterable[Path | Traversable],
) -> tuple[dict[str, AmazonPolicy], dict[str, str]]:
    """The platform policies by id, each read once, and the file each came from."""
    policies: dict[str, AmazonPolicy] = {}
    sources: dict[str, str] = {}
    for path in files:
        if str(path) in sources.values():
            continue
        policy = read_policy_file(path, AmazonPolicy)
        if policy.id in policies:
            raise PolicyFileError(str(path), f"id {policy.id!r} is taken by {sources[policy.id]}")
        policies[policy.id], sources[policy.id] = policy, str(path)
    return policies, sources
