"""A compliance check of Amazon reply templates, run when they load: a failing template is never used.

Amazon's communication rules forbid steering a buyer off Amazon: no outside links, no email addresses or
phone numbers, no offer Amazon's flow does not make (store credit, gift cards, discounts, a refund paid
directly), no request for feedback or reviews. The rules are data, one file per marketplace
(`data/amazon-us-compliance.yaml`, `data/amazon-ca-compliance.yaml`: each allows its own marketplace's
domain, and Amazon.ca's reads French too); each finding names the line of the template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from importlib.resources import files
from importlib.resources.abc import Traversable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.policy.policy_file import read_policy_file

COMPLIANCE_FILE: Traversable = files("app.policy") / "data" / "amazon-us-compliance.yaml"
CA_COMPLIANCE_FILE: Traversable = files("app.policy") / "data" / "amazon-ca-compliance.yaml"
COMPLIANCE_FILES = (COMPLIANCE_FILE, CA_COMPLIANCE_FILE)


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a regular expression ({exc})") from exc
    return pattern


class LintRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(cached_property,))

    name: str = Field(pattern=r"^[a-z_]+$")
    why: str
    pattern: str
    ignore_case: bool = False
    allowed: str | None = None  # a match whose `host` group fully matches this is fine

    @field_validator("pattern", "allowed")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return None if value is None else _compiles(value)

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)

    @cached_property
    def allowed_regex(self) -> re.Pattern[str] | None:
        return None if self.allowed is None else re.compile(self.allowed, re.IGNORECASE)


class ComplianceRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    version: str
    rules: list[LintRule] = Field(min_length=1)


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int
    text: str
    why: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.text!r} ({self.rule}: {self.why})"


@cache
def shipped_compliance_rules() -> ComplianceRules:
    return read_policy_file(COMPLIANCE_FILE, ComplianceRules)


# Jinja tags are code, not text the buyer reads (`order.ref` is not a domain); blank them, keeping lines.
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def lint_amazon_reply(source: str, rules: ComplianceRules | None = None) -> list[Finding]:
    rules = rules or shipped_compliance_rules()
    text = _JINJA_TAG.sub(lambda tag: "\n" * tag.group().count("\n") + " ", source)
    findings = []
    for rule in rules.rules:
        for match in rule.regex.finditer(text):
            allowed = rule.allowed_regex
            if allowed is not None and "host" in rule.regex.groupindex and allowed.fullmatch(match["host"]):
                continue
            line = text.count("\n", 0, match.start()) + 1
            findings.append(Finding(rule.name, line, match.group(), rule.why))
    return sorted(findings, key=lambda finding: finding.line)
