"""Shopify's webhook signature: base64 HMAC-SHA256 of the raw body under the app's client secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from pydantic import SecretStr

from app.channels import Channel, ShopifyChannel


def signature_of(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verifies(body: bytes, presented: str | None, secrets: Iterable[SecretStr]) -> bool:
    """True when `presented` is the signature of `body` under one of `secrets` (two during a rotation)."""
    if not presented:
        return False
    matched = False
    for secret in secrets:
        # Every secret is compared, in constant time, so timing tells nothing about which one matched.
        expected = signature_of(secret.get_secret_value(), body).encode()
        matched |= hmac.compare_digest(expected, presented.encode())
    return matched


def signing_channel(
    channels: Mapping[str, Channel], shop_domain: str | None, body: bytes, presented: str | None
) -> ShopifyChannel | None:
    """The Shopify channel whose secret signed this delivery, or None (no secret, or no match).

    The shop domain names the channel; a channel with no domain configured (the sandbox) accepts
    deliveries signed with its secrets from any shop.
    """
    shopify = [c for c in channels.values() if isinstance(c, ShopifyChannel) and c.webhook_secrets]
    domain = (shop_domain or "").strip().lower()
    named = [c for c in shopify if c.shop_domain and c.shop_domain.lower() == domain]
    for channel in named or [c for c in shopify if not c.shop_domain]:
        if verifies(body, presented, channel.webhook_secrets):
            return channel
    return None
