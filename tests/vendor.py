"""The API models the tests validate against: `vendor/` at the top of the repository, each folder with
its licence and a SOURCE.md saying where each file came from."""

from __future__ import annotations

from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "vendor"

AMAZON_ORDERS_MODEL = VENDOR / "amazon-sp-api" / "orders_2026-01-01.json"
SHOPIFY_ADMIN_SCHEMA = VENDOR / "shopify-admin" / "admin-2026-01.schema.graphql"
