"""The Admin API 2026-01 schema, built once per test process (it takes about a second and a half)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import graphql

VENDOR = Path(__file__).resolve().parents[2].parent / "shared" / "vendor"


@cache
def admin_schema() -> graphql.GraphQLSchema:
    schema = graphql.build_schema((VENDOR / "shopify-admin" / "admin-2026-01.schema.graphql").read_text())
    # graphql-core 3.3 rejects the schema as Shopify serves it (see SOURCE.md): skip that check.
    schema._validation_errors = []
    return schema
