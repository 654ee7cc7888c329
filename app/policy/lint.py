"""A compliance check of Amazon reply templates, run when they load: a failing template is never used.

Amazon's communication rules forbid steering a buyer off Amazon: no outside links, no email addresses or
phone numbers, no offer Amazon's flow does not make (store credit, gift cards, discounts), no request for
feedback or reviews. The rules are data; each finding names the line of the template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class LintRule:
    name: str
    pattern: re.Pattern[str]
    why: str
    allowed: re.Pattern[str] | None = None  # a match whose `host` group fully matches this is fine


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int
    text: str
    why: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.text!r} ({self.rule}: {self.why})"


AMAZON_REPLY_RULES: tuple[LintRule, ...] = (
    LintRule(
        "email",
        re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
        "no email addresses in Buyer-Seller Messaging",
    ),
    LintRule(
        "link",
        re.compile(r"\b(?:https?://)?(?P<host>(?:[a-z0-9-]+\.)+[a-z]{2,})\b(?:/\S*)?", re.IGNORECASE),
        "no links outside Amazon",
        allowed=re.compile(r"(?:[a-z0-9-]+\.)*amazon\.com", re.IGNORECASE),
    ),
    LintRule(
        "phone",
        # Not inside a longer run of digit groups: an Amazon order id (113-4567890-1234567) is no phone.
        re.compile(r"(?<![\d-])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?!-?\d)"),
        "no phone numbers",
    ),
    LintRule(
        "off_amazon_offer",
        re.compile(
            r"\b(?:store[\s-]credits?|gift[\s-]?cards?|discount\w*|coupons?|promo(?:tion(?:al)?)?[\s-]codes?|vouchers?)\b",
            re.IGNORECASE,
        ),
        "no offer outside Amazon's return flow",
    ),
    LintRule(
        "review_request",
        re.compile(r"\b(?:reviews?|reviewing|feedback|ratings?|rate us)\b", re.IGNORECASE),
        "no asking for feedback or reviews",
    ),
)

# Jinja tags are code, not text the buyer reads (`order.ref` is not a domain); blank them, keeping lines.
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def lint_amazon_reply(source: str, rules: tuple[LintRule, ...] = AMAZON_REPLY_RULES) -> list[Finding]:
    text = _JINJA_TAG.sub(lambda tag: "\n" * tag.group().count("\n") + " ", source)
    findings = []
    for rule in rules:
        for match in rule.pattern.finditer(text):
            if rule.allowed is not None and rule.allowed.fullmatch(match.group("host")):
                continue
            line = text.count("\n", 0, match.start()) + 1
            findings.append(Finding(rule.name, line, match.group(), rule.why))
    return sorted(findings, key=lambda finding: finding.line)
