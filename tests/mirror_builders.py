"""What the order mirror's tests share: a live Amazon channel pointed at the SP-API stand-in, its
seller account, and the order every made-up order is copied from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr

import app.connectors
from app.channels import AmazonChannel
from app.services.mirror import SellerAccount
from tests.connectors.amazon_standin import AmazonStandIn

KETTLE = "113-4567890-1234567"
TEMPLATE: dict[str, Any] = json.loads(
    (Path(app.connectors.__file__).parent / "fixtures" / "amazon_us" / f"{KETTLE}.json").read_text("utf-8")
)
SELLER_ID = "A3TH9S8BH6GOGM"  # the seller of Amazon's ORDER_CHANGE example


def live_channel(standin: AmazonStandIn, **overrides: Any) -> AmazonChannel:
    values: dict[str, Any] = {
        "key": "amazon_us",
        "timezone": "America/Los_Angeles",
        "currency": "USD",
        "marketplace_id": "ATVPDKIKX0DER",
        "endpoint": standin.url,
        "lwa_token_url": standin.token_url,
        "lwa_client_id": "amzn1.application-oa2-client.test",
        "lwa_client_secret": SecretStr("client-secret"),
        "refresh_token": SecretStr("Atzr|refresh"),
        "seller_id": SELLER_ID,
        **overrides,
    }
    return AmazonChannel(**values)


def account_of(channel: AmazonChannel) -> SellerAccount:
    return SellerAccount(channel.seller_account, (channel,))
