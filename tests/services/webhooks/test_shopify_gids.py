"""How a REST payload's ids become the GIDs the service keeps: one reading for every handler."""

from __future__ import annotations

from typing import Any

import pytest

from app.services.webhooks.handlers import shopify_gid


@pytest.mark.parametrize(
    ("resource", "gid"),
    [
        (
            {"admin_graphql_api_id": "gid://shopify/LineItem/866550311766439020", "id": 1},
            "gid://shopify/LineItem/866550311766439020",
        ),
        ({"id": 866550311766439020}, "gid://shopify/LineItem/866550311766439020"),
        ({"id": "866550311766439020"}, "gid://shopify/LineItem/866550311766439020"),  # digits as text
        # Another resource's GID (a refund line item's) is not the line item's: its number is.
        ({"admin_graphql_api_id": "gid://shopify/RefundLineItem/5", "id": 7}, "gid://shopify/LineItem/7"),
        ({"admin_graphql_api_id": "gid://shopify/LineItem/abc"}, None),
        ({"id": True}, None),
        ({"id": 0}, None),
        ({"id": -3}, None),
        ({"id": "12a"}, None),
        ({"id": 1.5}, None),
        ({}, None),
    ],
)
def test_a_payload_id_as_a_gid(resource: dict[str, Any], gid: str | None) -> None:
    assert shopify_gid("LineItem", resource) == gid


def test_the_number_may_sit_under_another_key() -> None:
    refund = {"admin_graphql_api_id": "gid://shopify/Refund/9", "order_id": 450789469}
    assert shopify_gid("Order", refund, "order_id") == "gid://shopify/Order/450789469"
