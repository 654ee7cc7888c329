"""Channels are configured, not coded: what the service knows about each sales channel.

How channels are read from the configuration is `app/channel_config.py`; this module holds what a
configured channel is.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from app.domain import Locale, Market, Platform

AMAZON_ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")
SHOPIFY_ORDER_GID = re.compile(r"^gid://shopify/Order/(\d+)$")
SHOPIFY_ORDER_NAME = re.compile(r"^#?\d{1,20}$")
CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class Marketplace:
    """An Amazon marketplace as the service knows it (docs/policy-facts.md, "Amazon.ca")."""

    id: str
    name: str
    country: str
    policy: str | None  # the built-in policy that decides its orders, if the service ships one

    def describe(self) -> str:
        return f"{self.id} ({self.name})"


# The marketplaces of a North America seller account; one account answers orders from all four.
MARKETPLACES = {
    marketplace.id: marketplace
    for marketplace in (
        Marketplace("ATVPDKIKX0DER", "Amazon.com", "US", "amazon-us"),
        Marketplace("A2EUQ1WTGCTBG2", "Amazon.ca", "CA", "amazon-ca"),
        Marketplace("A1AM78C64UM0Y8", "Amazon.com.mx", "MX", None),
        Marketplace("A2Q3Y263D00KWC", "Amazon.com.br", "BR", None),
    )
}


def describe_marketplace(marketplace_id: str) -> str:
    known = MARKETPLACES.get(marketplace_id)
    return known.describe() if known else marketplace_id


@dataclass(frozen=True, kw_only=True)
class Channel:
    key: str
    timezone: str
    currency: str
    # The locales its replies may be in, the first the default; empty: those its policy offers.
    locales: tuple[Locale, ...] = ()
    transit_days: int = 5
    policy_file: Path | None = None

    @property
    def platform(self) -> Platform:
        raise NotImplementedError

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def market(self) -> Market:
        """What a policy needs to know of the channel, and nothing else."""
        raise NotImplementedError

    @property
    def live(self) -> bool:
        """True when every credential is set: the live connector serves the channel."""
        raise NotImplementedError

    def recognises(self, order_ref: str) -> bool:
        """Whether `order_ref` has the shape of an order reference of this channel's platform."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class AmazonChannel(Channel):
    marketplace_id: str
    endpoint: str
    lwa_token_url: str
    policy_id: str = "amazon-us"
    lwa_client_id: str | None = None
    lwa_client_secret: SecretStr | None = field(default=None, repr=False)
    refresh_token: SecretStr | None = field(default=None, repr=False)
    # getOrder's usage plan; Amazon grants some sellers more than the published default.
    get_order_rate: float = 0.5
    get_order_burst: int = 30
    # Read by the order mirror: the merchant token, the ORDER_CHANGE queue, how far back to mirror.
    seller_id: str | None = None
    sqs_queue_url: str | None = None
    mirror_days: int = 90

    @property
    def platform(self) -> Platform:
        return Platform.amazon

    @property
    def live(self) -> bool:
        return bool(self.lwa_client_id and self.lwa_client_secret and self.refresh_token)

    @property
    def seller_account(self) -> str:
        """A stable, non-secret name for the seller authorisation (application and refresh token).

        Channels with the same credentials are one seller account: one token, one getOrder budget and
        one answer per order, whichever marketplace the order is from. Without credentials: the sandbox.
        """
        if not self.live:
            return "sandbox"
        secret = self.refresh_token.get_secret_value() if self.refresh_token else ""
        digest = hashlib.sha256(f"{self.lwa_client_id}\0{secret}".encode()).hexdigest()
        return digest[:16]

    @property
    def market(self) -> Market:
        return Market(
            channel=self.key,
            platform=self.platform,
            zone=self.zone,
            transit_days=self.transit_days,
            marketplace=self.marketplace_id,
            currency=self.currency,
            locales=self.locales,
            policy=self.policy_id,
        )

    def recognises(self, order_ref: str) -> bool:
        return AMAZON_ORDER_ID.match(order_ref) is not None


@dataclass(frozen=True, kw_only=True)
class ShopifyChannel(Channel):
    shop_domain: str | None
    api_version: str
    access_token: SecretStr | None = field(default=None, repr=False)
    admin_url_override: str | None = None
    webhook_secrets: tuple[SecretStr, ...] = field(default=(), repr=False)

    @property
    def platform(self) -> Platform:
        return Platform.shopify

    @property
    def live(self) -> bool:
        return bool((self.shop_domain or self.admin_url_override) and self.access_token)

    @property
    def admin_url(self) -> str:
        if self.admin_url_override:
            return self.admin_url_override
        return f"https://{self.shop_domain}/admin/api/{self.api_version}/graphql.json"

    @property
    def market(self) -> Market:
        # The merchant policy is the one loaded for this channel (a replay may put a draft in its place).
        return Market(
            channel=self.key,
            platform=self.platform,
            zone=self.zone,
            transit_days=self.transit_days,
            marketplace=self.shop_domain,
            currency=self.currency,
            locales=self.locales,
        )

    def recognises(self, order_ref: str) -> bool:
        return bool(SHOPIFY_ORDER_GID.match(order_ref) or SHOPIFY_ORDER_NAME.match(order_ref))
