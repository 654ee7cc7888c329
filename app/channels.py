"""Channels are configured, not coded: what the service knows about each sales channel."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from app.domain import Locale, Market, Platform

AMAZON_ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")
SHOPIFY_ORDER_GID = re.compile(r"^gid://shopify/Order/(\d+)$")
SHOPIFY_ORDER_NAME = re.compile(r"^#?\d{1,20}$")


@dataclass(frozen=True, kw_only=True)
class Channel:
    key: str
    timezone: str
    currency: str
    default_locale: Locale
    transit_days: int = 5

    @property
    def platform(self) -> Platform:
        raise NotImplementedError

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def market(self) -> Market:
        """What a policy needs to know of the channel, and nothing else."""
        return Market(
            channel=self.key, platform=self.platform, zone=self.zone, transit_days=self.transit_days
        )

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

    def recognises(self, order_ref: str) -> bool:
        return AMAZON_ORDER_ID.match(order_ref) is not None


@dataclass(frozen=True, kw_only=True)
class ShopifyChannel(Channel):
    shop_domain: str | None
    api_version: str
    access_token: SecretStr | None = field(default=None, repr=False)
    admin_url_override: str | None = None
    webhook_secrets: tuple[SecretStr, ...] = field(default=(), repr=False)
    policy_file: Path | None = None

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

    def recognises(self, order_ref: str) -> bool:
        return bool(SHOPIFY_ORDER_GID.match(order_ref) or SHOPIFY_ORDER_NAME.match(order_ref))
