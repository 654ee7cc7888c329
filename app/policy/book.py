"""The whole decision for one request: a pure function of the order, request, policies and `as_of`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from app.channels import Channel
from app.domain import (
    Classification,
    ExplanationStep,
    Fault,
    Locale,
    Order,
    Platform,
    PolicyResult,
    QueueAssignment,
    Reply,
    ReturnRequest,
)
from app.policy.amazon_us import AmazonUsPolicy, evaluate_amazon_us
from app.policy.evaluation import Trace
from app.policy.language import AMAZON_US_LOCALE, amazon_us_locale, merchant_locale
from app.policy.merchant import MERCHANT_SCENARIOS, MerchantPolicy, evaluate_merchant
from app.policy.policy_file import PolicyFileError, read_policy_file
from app.policy.replies import TEMPLATES, ReplyBook
from app.policy.routing import assign_queue

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


class PolicyBook:
    """The policies and reply templates, loaded and checked once at start-up."""

    def __init__(
        self, amazon_us: AmazonUsPolicy, merchant: Mapping[str, MerchantPolicy], replies: ReplyBook
    ) -> None:
        self._amazon_us = amazon_us
        self._merchant = dict(merchant)
        self._replies = replies

    @classmethod
    def load(
        cls,
        merchant_policy_files: Mapping[str, Path],
        *,
        amazon_us_file: Path | Traversable = AMAZON_US_POLICY,
        templates: Path | Traversable = TEMPLATES,
    ) -> PolicyBook:
        """`merchant_policy_files` maps a merchant channel's key to its policy file.

        Raises `PolicyFileError` naming the file and the problem; a policy whose replies are missing is
        refused here too, so no request ever meets a missing template.
        """
        amazon_us = read_policy_file(amazon_us_file, AmazonUsPolicy)
        merchant = {
            key: read_policy_file(path, MerchantPolicy) for key, path in merchant_policy_files.items()
        }
        replies = ReplyBook.load(templates, amazon_sets={amazon_us.template_set})
        missing = replies.missing(
            amazon_us.template_set, sorted(amazon_us.reply_scenarios), [AMAZON_US_LOCALE]
        )
        if missing:
            raise PolicyFileError(str(amazon_us_file), f"reply templates missing: {', '.join(missing)}")
        for key, policy in merchant.items():
            missing = replies.missing(policy.template_set, MERCHANT_SCENARIOS, policy.locales.offered)
            if missing:
                raise PolicyFileError(
                    str(merchant_policy_files[key]), f"reply templates missing: {', '.join(missing)}"
                )
        return cls(amazon_us, merchant, replies)

    def merchant_policy(self, channel_key: str) -> MerchantPolicy:
        try:
            return self._merchant[channel_key]
        except KeyError:
            raise LookupError(f"no merchant policy loaded for channel {channel_key!r}") from None

    def decide(self, order: Order, request: ReturnRequest, channel: Channel, as_of: datetime) -> Verdict:
        """The decision for `request` about `order` at `as_of` (aware); no I/O, no clock.

        Raises `ValidationProblem` only, when the request names a SKU that is not on the order.
        """
        if channel.platform is Platform.amazon:
            # Amazon's rules come from Amazon's policy alone: no merchant setting reaches this branch.
            evaluation = evaluate_amazon_us(self._amazon_us, order, request, channel, as_of)
            trace = Trace(evaluation.policy_ref, evaluation.steps)
            locale = amazon_us_locale(request, trace)
        else:
            policy = self.merchant_policy(channel.key)
            evaluation = evaluate_merchant(policy, order, request, channel, as_of)
            trace = Trace(evaluation.policy_ref, evaluation.steps)
            locale = merchant_locale(order, request, policy.locales, trace)
        queue = assign_queue(
            channel.platform,
            review=evaluation.result.review,
            locale=locale,
            contacted_at=request.customer_contacted_at or as_of,
            as_of=as_of,
            trace=trace,
        )
        template = self._replies.render(evaluation, order, locale)
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
