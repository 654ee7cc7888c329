"""Configuration from the environment (and a `.env` file), as the contract's table lists it.

The channels are `CHANNEL_<NAME>_<SETTING>` variables and the `CHANNELS_FILE` YAML: the settings of
`amazon_us` and `shopify_ca` are fields here (the variables they always had), any other channel's are
collected as they come and read by `app/channel_config.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.channel_config import build_channels, split_variable
from app.channels import Channel
from app.db.engine import Timeouts

DEFAULT_MERCHANT_POLICY = Path(__file__).parent / "policy" / "data" / "shopify-ca-default.yaml"
DEFAULT_ROUTING_FILE = Path(__file__).parent / "policy" / "data" / "routing.yaml"
# The fields that hold the built-in channels' settings, and the field that collects every other one.
_BUILT_IN_CHANNELS = ("amazon_us", "shopify_ca")
_COLLECTED = "channel_variables"


class _ChannelVariables(PydanticBaseSettingsSource):
    """Every `CHANNEL_*` variable (environment over `.env`) that is not a field of its own."""

    def __init__(
        self, settings_cls: type[BaseSettings], env: EnvSettingsSource, dotenv: DotEnvSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self._sources = (dotenv, env)  # the environment wins

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        fields = self.settings_cls.model_fields
        found = {
            name: value
            for source in self._sources
            for name, value in source.env_vars.items()
            if name.startswith("channel_") and name not in fields and value is not None
        }
        return {_COLLECTED: found} if found else {}


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
    channel_amazon_us_timezone: str | None = Field(default=None, description="default: the policy's")
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

    channels_file: Path | None = Field(
        default=None, description="A YAML file of channels; a CHANNEL_* variable wins over it."
    )
    # Every other CHANNEL_<NAME>_<SETTING> variable, lower-cased name to value (see _ChannelVariables).
    channel_variables: dict[str, Any] = Field(default_factory=dict)

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
    webhook_unverified_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1_000_000,
        description="webhook bodies read before their signature is checked, all together; past it, 503",
    )
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

    # How long a request waits on PostgreSQL before it answers 503 `database_unavailable`: a webhook's
    # acknowledgement must come within Shopify's 5 seconds even when the database went silent.
    database_connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    database_pool_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    database_statement_timeout_seconds: float = Field(default=3.0, gt=0, le=600)

    # A request's body must arrive whole within this; else 408 `request_timeout`.
    body_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # `python -m app serve` (see app.serving): open connections at most (beyond it, new ones are
    # closed at once, and requests on the last one answered 503), the time and size a request's
    # line and headers may take, and how long an idle keep-alive connection is kept.
    serve_limit_concurrency: int = Field(default=1000, ge=1)
    serve_header_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    serve_max_header_bytes: int = Field(default=64 * 1024, ge=8 * 1024)
    serve_keep_alive_seconds: int = Field(default=5, ge=1, le=300)

    @property
    def database_timeouts(self) -> Timeouts:
        return Timeouts(
            connect=self.database_connect_timeout_seconds,
            pool=self.database_pool_timeout_seconds,
            statement=self.database_statement_timeout_seconds,
        )

    @field_validator("channel_shopify_ca_webhook_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [SecretStr(part.strip()) for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(env_settings, EnvSettingsSource)
        assert isinstance(dotenv_settings, DotEnvSettingsSource)
        collected = _ChannelVariables(settings_cls, env_settings, dotenv_settings)
        return init_settings, env_settings, dotenv_settings, collected, file_secret_settings

    @property
    def channels(self) -> dict[str, Channel]:
        """Every configured channel; raises `ChannelConfigError` naming a setting to fix.

        Built on each access, never cached: a copy of the settings (`model_copy`) must not carry the
        channels of the settings it was copied from. Read it once, at start-up.
        """
        return build_channels(self._channel_settings(), self.channels_file)

    def _channel_settings(self) -> Mapping[str, Mapping[str, Any]]:
        """{channel: {setting: value}}: what the environment sets, the built-in channels' fields first."""
        found: dict[str, dict[str, Any]] = {}
        for name in sorted(self.model_fields_set):
            for channel in _BUILT_IN_CHANNELS:
                prefix = f"channel_{channel}_"
                if name.startswith(prefix):
                    setting = name.removeprefix(prefix)
                    if setting == "policy_file" and getattr(self, name) == DEFAULT_MERCHANT_POLICY:
                        continue  # the default, named: the same as not named
                    value = getattr(self, name)
                    found.setdefault(channel, {})[setting] = str(value) if isinstance(value, Path) else value
        for name, value in self.channel_variables.items():
            channel, setting = split_variable(name)
            found.setdefault(channel, {})[setting] = value
        return found
