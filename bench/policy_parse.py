"""Time to read each bundled policy file (YAML to a validated model), and a draft at the rules bound.

    .venv/bin/python bench/policy_parse.py [--repeat 100]
    .venv/bin/python bench/policy_parse.py --against /tmp/older-checkout/app/policy/policy_file.py

Each figure is the best of --runs runs of --repeat reads, per read, in CPU time, through
`parse_policy` as start-up and `POST /v1/policies/simulate` use it. With --against, another version of
the reader (its policy_file.py, loaded beside this one) is timed in the same process, the two in turn
run by run, so a busy moment of the machine touches both.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from app.policy import policy_file
from app.policy.amazon import AmazonPolicy
from app.policy.book import AMAZON_POLICIES
from app.policy.lint import COMPLIANCE_FILE, ComplianceRules
from app.policy.merchant import MerchantPolicy
from app.policy.routing import ROUTING_FILE, RoutingTable
from app.settings import DEFAULT_MERCHANT_POLICY

SHIPPED = DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8")
RULES = 195  # with the shipped five: the bound


def cases() -> list[tuple[str, str, type[BaseModel]]]:
    rule = "  - {{id: r{}, when: {{fault: customer}}, then: {{review: true}}}}\n"
    draft = SHIPPED.replace("\nlocales:", "".join(rule.format(n) for n in range(RULES)) + "\nlocales:")
    return [
        (DEFAULT_MERCHANT_POLICY.name, SHIPPED, MerchantPolicy),
        *((path.name, path.read_text(encoding="utf-8"), AmazonPolicy) for path in AMAZON_POLICIES),
        (ROUTING_FILE.name, ROUTING_FILE.read_text(encoding="utf-8"), RoutingTable),
        (COMPLIANCE_FILE.name, COMPLIANCE_FILE.read_text(encoding="utf-8"), ComplianceRules),
        (f"draft, {RULES} more rules ({len(draft):,} chars)", draft, MerchantPolicy),
    ]


def per_read(parse: Callable[[], Any], repeat: int) -> float:
    started = time.process_time()
    for _ in range(repeat):
        parse()
    return (time.process_time() - started) / repeat * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--against", type=Path, help="another version's app/policy/policy_file.py")
    args = parser.parse_args()
    readers = {"this": policy_file}
    if args.against:
        spec = importlib.util.spec_from_file_location("other_policy_file", args.against)
        assert spec is not None
        assert spec.loader is not None
        other = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(other)
        readers["other"] = other
    print(
        f"{'ms of CPU per read, best of ' + str(args.runs):<40}" + "".join(f"{name:>10}" for name in readers)
    )
    for name, text, model in cases():
        best = {reader: float("inf") for reader in readers}
        for _ in range(args.runs):
            for reader, module in readers.items():
                read = lambda: module.parse_policy(text, model, source="bench")  # noqa: E731, B023
                best[reader] = min(best[reader], per_read(read, args.repeat))
        print(f"{name:<40}" + "".join(f"{best[reader]:>10.3f}" for reader in readers))


if __name__ == "__main__":
    main()
