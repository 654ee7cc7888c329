"""Reply templates: one Jinja file per template set, scenario and locale, rendered for one decision.

`templates/<set>/<scenario>.<locale>.j2` holds a `subject` and a `body` block; its id is
`<set>/<scenario>/<locale>` (`amazon-us/damaged/en-US`). Templates are plain text (no autoescape), run
in a sandbox with strict undefined variables, and read from the package so an installed wheel finds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache, lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from babel import Locale as BabelLocale
from babel.dates import format_date
from babel.lists import format_list
from babel.numbers import format_currency, format_percent
from jinja2 import DictLoader, StrictUndefined, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from app.domain import Fault, Fulfillment, Locale, Money, Order, Reply
from app.policy.evaluation import Evaluation
from app.policy.lint import ComplianceRules, lint_amazon_reply
from app.policy.policy_file import PolicyFileError

TEMPLATES: Traversable = files("app.policy") / "templates"
SUFFIX = ".j2"
BLOCKS = ("subject", "body")


def template_id(template_set: str, scenario: str, locale: Locale) -> str:
    return f"{template_set}/{scenario}/{locale.value}"


class ReplyBook:
    """Every reply template, checked once at start-up: syntax, both blocks, and Amazon's rules."""

    def __init__(self, sources: Mapping[str, str], origins: Mapping[str, str]) -> None:
        self._origins = dict(origins)
        self._names: dict[str, frozenset[str]] = {}  # the variables each template uses
        self._env = SandboxedEnvironment(
            loader=DictLoader(dict(sources)),
            undefined=StrictUndefined,
            autoescape=False,  # replies are plain text for helpdesks, not HTML
            trim_blocks=True,
            lstrip_blocks=True,
        )
        for name, source in sources.items():
            self._check(name, source)

    @classmethod
    def load(
        cls,
        root: Traversable | Path = TEMPLATES,
        *,
        amazon_sets: Mapping[str, ComplianceRules],
    ) -> ReplyBook:
        """Read `root`; a template of a set in `amazon_sets` that breaks the set's rules is refused."""
        sources: dict[str, str] = {}
        origins: dict[str, str] = {}
        for set_dir in sorted(root.iterdir(), key=lambda entry: entry.name):
            if not set_dir.is_dir():
                continue
            for entry in sorted(set_dir.iterdir(), key=lambda entry: entry.name):
                if not entry.name.endswith(SUFFIX):
                    continue
                scenario, _, locale = entry.name.removesuffix(SUFFIX).rpartition(".")
                if locale not in {member.value for member in Locale} or not scenario:
                    raise PolicyFileError(
                        str(entry), "a template is named <scenario>.<locale>.j2 with a known locale"
                    )
                source = entry.read_text(encoding="utf-8")
                if set_dir.name in amazon_sets:
                    findings = lint_amazon_reply(source, amazon_sets[set_dir.name])
                    if findings:
                        problems = "; ".join(str(finding) for finding in findings)
                        raise PolicyFileError(str(entry), f"breaks Amazon's communication rules: {problems}")
                name = template_id(set_dir.name, scenario, Locale(locale))
                sources[name] = source
                origins[name] = str(entry)
        return cls(sources, origins)

    def _check(self, name: str, source: str) -> None:
        try:
            template = self._env.get_template(name)
        except TemplateSyntaxError as exc:
            raise PolicyFileError(self._origins[name], f"line {exc.lineno}: {exc.message}") from exc
        self._names[name] = frozenset(meta.find_undeclared_variables(self._env.parse(source)))
        missing = [block for block in BLOCKS if block not in template.blocks]
        if missing:
            raise PolicyFileError(self._origins[name], f"has no {' or '.join(missing)} block")

    def missing(self, template_set: str, scenarios: Iterable[str], locales: Iterable[Locale]) -> list[str]:
        known = set(self._origins)
        wanted = [template_id(template_set, scenario, locale) for scenario in scenarios for locale in locales]
        return [name for name in wanted if name not in known]

    def render(self, evaluation: Evaluation, order: Order, locale: Locale) -> Reply:
        name = template_id(evaluation.template_set, evaluation.scenario, locale)
        template = self._env.get_template(name)
        context = template.new_context(reply_context(evaluation, order, locale, self._names[name]))
        try:
            subject, body = ("".join(template.blocks[block](context)).strip() for block in BLOCKS)
        except TemplateError as exc:  # a template using a variable the decision does not hold
            raise PolicyFileError(self._origins[name], str(exc)) from exc
        return Reply(id=name, locale=locale, subject=" ".join(subject.split()), body=body + "\n")


@cache
def _babel_locale(locale: Locale) -> BabelLocale:
    # Parsed once: babel parses a locale string again on every format_* call, a tenth of a request.
    return BabelLocale.parse(locale.value.replace("-", "_"))


@dataclass(frozen=True)
class _Facts:
    evaluation: Evaluation
    order: Order
    where: BabelLocale


def _money(facts: _Facts, amount: Money) -> str:
    return str(format_currency(amount.amount, amount.currency, locale=facts.where))


def _percent(facts: _Facts, number: Decimal) -> str:
    return str(format_percent(number / 100, locale=facts.where, decimal_quantization=False))


def _return_by(facts: _Facts) -> str | None:
    ends = facts.evaluation.result.return_window_ends
    return _long_date(ends, facts.where) if ends else None


@lru_cache(maxsize=1024)
def _long_date(day: date, where: BabelLocale) -> str:
    # The same few dates, all day long: every return delivered on one day ends its window on one day.
    return str(format_date(day, "long", locale=where))


def _refund_value(facts: _Facts) -> str:
    result = facts.evaluation.result
    return _money(facts, (result.returned_value - result.restocking_fee.amount).rounded())


def _store_credit_bonus(facts: _Facts) -> str | None:
    bonus = facts.evaluation.result.store_credit_bonus_percent
    return _percent(facts, bonus) if bonus else None


def _store_credit_value(facts: _Facts) -> str:
    result = facts.evaluation.result
    value = result.returned_value
    return _money(facts, (value + value.percent(result.store_credit_bonus_percent)).rounded())


# What a template may use: only what the decision holds, formatted for the reader's locale. Each is
# worked out only for a template that names it: Babel's formatting was half of a decision's time.
VARIABLES: dict[str, Callable[[_Facts], Any]] = {
    "order_ref": lambda facts: facts.order.order_ref,
    "items": lambda facts: list(facts.evaluation.item_titles),
    "items_text": lambda facts: str(format_list(list(facts.evaluation.item_titles), locale=facts.where)),
    "return_by": _return_by,
    "options": lambda facts: [option.value for option in facts.evaluation.result.resolution_options],
    "returned_value": lambda facts: _money(facts, facts.evaluation.result.returned_value),
    "fee_allowed": lambda facts: facts.evaluation.result.restocking_fee.allowed,
    "fee": lambda facts: _money(facts, facts.evaluation.result.restocking_fee.amount),
    "fee_percent": lambda facts: _percent(facts, facts.evaluation.result.restocking_fee.max_percent),
    "refund_value": _refund_value,
    "store_credit_bonus": _store_credit_bonus,
    "store_credit_value": _store_credit_value,
    "seller_fault": lambda facts: facts.evaluation.fault is Fault.seller,
    "fba": lambda facts: facts.order.fulfillment is Fulfillment.amazon,
    "return_required": lambda facts: facts.evaluation.result.return_required,
    "final_sale": lambda facts: facts.evaluation.final_sale,
    # Lines the customer asked about that stay with them (final sale) while the others come back.
    "kept_items_text": lambda facts: (
        str(format_list(list(facts.evaluation.kept_titles), locale=facts.where))
        if facts.evaluation.kept_titles
        else None
    ),
}


def reply_context(
    evaluation: Evaluation, order: Order, locale: Locale, names: Iterable[str] = VARIABLES
) -> dict[str, Any]:
    """The values of `names` (those a template uses) for this decision; unknown names are left out."""
    facts = _Facts(evaluation, order, _babel_locale(locale))
    return {name: VARIABLES[name](facts) for name in names if name in VARIABLES}
