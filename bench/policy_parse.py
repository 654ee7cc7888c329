"""Time to read each bundled policy file (YAML to a validated model), and a draft at the rules bound.

    .venv/bin/python bench/policy_parse.py [--repeat 200]
    PYTHONPATH=/tmp/older-checkout .venv/bin/python bench/policy_parse.py   # the same, on another checkout

Each figure is the best of five runs of --repeat reads, per read, in one process: the loader as
start-up and `POST /v1/policies/simulate` use it, through `read_policy_file`/`parse_policy`.
"""

from __future__ import annotations

import argparse
import timeit

from app.policy.amazon_us import AmazonUsPolicy
from app.policy.book import AMAZON_US_POLICY
from app.policy.lint import COMPLIANCE_FILE, ComplianceRules
from app.policy.merchant import MerchantPolicy
from app.policy.policy_file import parse_policy, read_policy_file
from app.policy.routing import ROUTING_FILE, RoutingTable
from app.settings import DEFAULT_MERCHANT_POLICY

SHIPPED = DEFAULT_MERCHANT_POLICY.read_text(encoding="utf-8")
RULES = 195  # with the shipped five: the bound


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    extra = "".join(
        f"  - {{id: r{n}, when: {{fault: customer}}, then: {{review: true}}}}\n" for n in range(RULES)
    )
    draft = SHIPPED.replace("\nlocales:", extra + "\nlocales:")
    cases = [
        (DEFAULT_MERCHANT_POLICY.name, lambda: read_policy_file(DEFAULT_MERCHANT_POLICY, MerchantPolicy)),
        (AMAZON_US_POLICY.name, lambda: read_policy_file(AMAZON_US_POLICY, AmazonUsPolicy)),
        (ROUTING_FILE.name, lambda: read_policy_file(ROUTING_FILE, RoutingTable)),
        (COMPLIANCE_FILE.name, lambda: read_policy_file(COMPLIANCE_FILE, ComplianceRules)),
        (
            f"draft, {RULES} more rules ({len(draft):,} chars)",
            lambda: parse_policy(draft, MerchantPolicy, source="draft"),
        ),
    ]
    for name, read in cases:
        best = min(timeit.repeat(read, number=args.repeat, repeat=5)) / args.repeat
        print(f"{name:<40} {best * 1000:8.3f} ms")


if __name__ == "__main__":
    main()
