"""The Admin API 2026-01 schema, built once per test process (it takes about a second and a half)."""

from __future__ import annotations

from functools import cache

import graphql

from tests.vendor import SHOPIFY_ADMIN_SCHEMA


@cache
def admin_schema() -> graphql.GraphQLSchema:
    schema = graphql.build_schema(SHOPIFY_ADMIN_SCHEMA.read_text())
    # graphql-core 3.3 rejects the schema as Shopify serves it (vendor/shopify-admin/SOURCE.md):
    # skip that check.
    schema._validation_errors = []
    return schema
