"""Configuration from the environment (and a `.env` file), as the contract's table lists it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.channels import AmazonChannel, Channel, ShopifyChannel
from app.domain import Locale

DEFAULT_MERCHANT_POLICY = Path(__file__).parent / "policy" / "data" / "shopify-ca-default.yaml"
DEFAULT_ROUTING_FILE = Path(__file__).parent / "policy" / "data" / "routing.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///./returns-router.db"
    redis_url: str | None = None
    log_format: str = Field(default="auto", description="json, console, or auto (console on a terminal)")
    log_level: str = "INFO"

    channel_amazon_us_lwa_client_id: str | None = None
    channel_amazon_us_lwa_client_secret: SecretStr | None = None
    channel_amazon_us_refresh_token: SecretStr | None = None
    channel_amazon_us_endpoint: str = "https://sellingpartnerapi-na.amazon.com"
    channel_amazon_us_lwa_token_url: str = "https://api.amazon.com/auth/o2/token"
    channel_amazon_us_marketplace_id: str = "ATVPDKIKX0DER"
    channel_amazon_us_timezone: str = "America/Los_Angeles"
    channel_amazon_us_transit_days: int = 5
    channel_amazon_us_get_order_rate: float = Field(default=0.5, gt=0)
    channel_amazon_us_get_order_burst: int = Field(default=30, ge=1)
    channel_amazon_us_seller_id: str | None = None
    channel_amazon_us_sqs_queue_url: str | None = None
    channel_amazon_us_mirror_days: int = Field(default=90, ge=1, le=730)

    channel_shopify_ca_shop_domain: str | None = None
    channel_shopify_ca_access_token: SecretStr | None = None
    channel_shopify_ca_api_version: str = "2026-10"
    channel_shopify_ca_admin_url: str | None = None
    channel_shopify_ca_webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    channel_shopify_ca_policy_file: Path = DEFAULT_MERCHANT_POLICY
    channel_shopify_ca_timezone: str = "America/Toronto"
    channel_shopify_ca_transit_days: int = 5

    idempotency_ttl_hours: int = Field(default=24, ge=24)
    # A request waits at most this long for a channel's rate limit before it answers 503.
    upstream_max_wait_seconds: float = Field(default=10.0, ge=0)
    # How old an order from a channel's API may be when a decision uses it (0: never cached).
    order_cache_max_age_seconds: float = Field(default=30.0, ge=0)
    routing_file: Path = Field(default=DEFAULT_ROUTING_FILE, description="The queue table (YAML).")
    http_transport: Literal["aiohttp", "httpx"] = Field(
        default="aiohttp", description="aiohttp (faster) or httpx's own, which respx can mock"
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="larger bodies are refused (413)")
    api_key_cache_seconds: float = Field(
        default=5.0, ge=0, le=60, description="how long a verified key is trusted without asking again"
    )
    # The Amazon order mirror: how often the worker asks searchOrders for changes, and how long after
    # its last confirmation a mirrored order may still decide a return (older: getOrder is asked).
    mirror_sync_seconds: float = Field(default=300.0, ge=1)
    mirror_max_age_seconds: float = Field(default=900.0, ge=0)
    # The standard AWS settings, for the ORDER_CHANGE queues (Amazon SQS).
    aws_region: str | None = None  # else the region in the queue URL
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_endpoint_url_sqs: str | None = None

    # Outcomes: Shopify decisions still open this many days after are read back from Shopify, a
    # batch at a time; Amazon's returns report is fetched by the worker every so many hours (0:
    # never), covering so many days back (Amazon serves at most 60).
    outcomes_read_back_after_days: float = Field(default=3.0, gt=0)
    outcomes_read_back_batch: int = Field(default=20, ge=1, le=500)
    amazon_returns_report_every_hours: float = Field(default=24.0, ge=0)
    amazon_returns_report_days: int = Field(default=30, ge=1, le=60)

    @field_validator("channel_shopify_ca_webhook_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [SecretStr(part.strip()) for part in value.split(",") if part.strip()]
        return value

    @property
    def channels(self) -> dict[str, Channel]:
        # Built on each access, never cached: a copy of the settings (`model_copy`) must not carry
        # the channels of the settings it was copied from.
        amazon = AmazonChannel(
            key="amazon_us",
            timezone=self.channel_amazon_us_timezone,
            currency="USD",
            default_locale=Locale.en_us,
            transit_days=self.channel_amazon_us_transit_days,
            marketplace_id=self.channel_amazon_us_marketplace_id,
            endpoint=self.channel_amazon_us_endpoint,
            lwa_token_url=self.channel_amazon_us_lwa_token_url,
            lwa_client_id=self.channel_amazon_us_lwa_client_id,
            lwa_client_secret=self.channel_amazon_us_lwa_client_secret,
            refresh_token=self.channel_amazon_us_refresh_token,
            get_order_rate=self.channel_amazon_us_get_order_rate,
            get_order_burst=self.channel_amazon_us_get_order_burst,
            seller_id=self.channel_amazon_us_seller_id,
            sqs_queue_url=self.channel_amazon_us_sqs_queue_url,
            mirror_days=self.channel_amazon_us_mirror_days,
        )
        shopify = ShopifyChannel(
            key="shopify_ca",
            timezone=self.channel_shopify_ca_timezone,
            currency="CAD",
            default_locale=Locale.en_ca,
            transit_days=self.channel_shopify_ca_transit_days,
            shop_domain=self.channel_shopify_ca_shop_domain,
            access_token=self.channel_shopify_ca_access_token,
            api_version=self.channel_shopify_ca_api_version,
            admin_url_override=self.channel_shopify_ca_admin_url,
            webhook_secrets=tuple(self.channel_shopify_ca_webhook_secrets),
            policy_file=self.channel_shopify_ca_policy_file,
        )
        return {channel.key: channel for channel in (amazon, shopify)}
