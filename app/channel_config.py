"""Channels from the configuration: `CHANNEL_<NAME>_<SETTING>` variables and the `CHANNELS_FILE` YAML.

A variable wins over the file, the file over the defaults. `amazon_us` and `shopify_ca` always
exist; any other channel exists once one of its settings is set, and a channel that is declared but
incomplete stops start-up with a `ChannelConfigError` naming the missing setting. Secrets come from
the environment or from a file the operator names (`<SECRET>_FILE`), never from the channels file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from app.channels import CHANNEL_NAME, MARKETPLACES, AmazonChannel, Channel, ShopifyChannel
from app.domain import Locale
from app.policy.amazon import AmazonPolicy
from app.policy.book import BUILT_IN_POLICIES, built_in_policy_file
from app.policy.policy_file import PolicyFileError, read_policy_file

Kind = Literal["amazon", "shopify"]
# The channels that exist without any setting: on the sandbox until their credentials are set.
ALWAYS = {"amazon_us": "amazon", "shopify_ca": "shopify"}
SECRETS = frozenset({"lwa_client_secret", "refresh_token", "access_token", "webhook_secrets"})
AMAZON_DEFAULT_MARKETPLACE = {"amazon_us": "ATVPDKIKX0DER"}


class ChannelConfigError(ValueError):
    """A channel that cannot be used as configured; the message names the setting to fix."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    timezone: str | None = None
    transit_days: int = Field(default=5, ge=0, le=60)
    locales: list[Locale] | None = Field(default=None, min_length=1)
    policy: str | None = None

    @field_validator("locales", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"{value!r} is not an IANA time zone (e.g. America/Toronto)") from exc
        return value


class AmazonSettings(_Settings):
    kind: Literal["amazon"]
    marketplace_id: str = Field(pattern=r"^[A-Z0-9]{10,16}$")
    lwa_client_id: str | None = None
    lwa_client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    endpoint: str = "https://sellingpartnerapi-na.amazon.com"
    lwa_token_url: str = "https://api.amazon.com/auth/o2/token"
    get_order_rate: float = Field(default=0.5, gt=0)
    get_order_burst: int = Field(default=30, ge=1)
    seller_id: str | None = None
    sqs_queue_url: str | None = None
    mirror_days: int = Field(default=90, ge=1, le=730)


class ShopifySettings(_Settings):
    kind: Literal["shopify"]
    shop_domain: str | None = None
    access_token: SecretStr | None = None
    api_version: str = "2026-10"
    admin_url: str | None = None
    webhook_secrets: list[SecretStr] = Field(default_factory=list)
    policy_file: str | None = None
    currency: str = Field(default="CAD", pattern=r"^[A-Z]{3}$")

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [SecretStr(part.strip()) for part in value.split(",") if part.strip()]
        return value


_MODELS: dict[str, type[_Settings]] = {"amazon": AmazonSettings, "shopify": ShopifySettings}
SETTINGS = {kind: frozenset(model.model_fields) for kind, model in _MODELS.items()}
# Every name a variable may end with: the settings, and `<secret>_file` for each secret.
_SUFFIXES = sorted(
    {name for names in SETTINGS.values() for name in names} | {f"{secret}_file" for secret in SECRETS},
    key=len,
    reverse=True,
)


def variable(channel: str, setting: str) -> str:
    return f"CHANNEL_{channel.upper()}_{setting.upper()}"


def split_variable(name: str) -> tuple[str, str]:
    """`channel_amazon_ca_marketplace_id` → (`amazon_ca`, `marketplace_id`): the longest setting wins."""
    rest = name.lower().removeprefix("channel_")
    for suffix in _SUFFIXES:
        channel = rest.removesuffix(f"_{suffix}")
        if channel != rest and CHANNEL_NAME.match(channel):
            return channel, suffix
    raise ChannelConfigError(
        f"{name.upper()} is not a channel setting: channels are set as CHANNEL_<NAME>_<SETTING>, "
        f"SETTING one of {', '.join(sorted(s.upper() for s in _SUFFIXES))}"
    )


@dataclass
class _Raw:
    """One channel's settings as found, each with where it was found (for the error messages)."""

    name: str
    values: dict[str, Any]
    origin: dict[str, str]

    def set(self, setting: str, value: Any, origin: str) -> None:
        self.values[setting] = value
        self.origin[setting] = origin

    def where(self, setting: str) -> str:
        return self.origin.get(setting, variable(self.name, setting))


def build_channels(
    environment: Mapping[str, Mapping[str, Any]], channels_file: Path | None = None
) -> dict[str, Channel]:
    """The channels `environment` ({channel: {setting: value}}) and the channels file declare."""
    raw: dict[str, _Raw] = {name: _Raw(name, {}, {}) for name in ALWAYS}
    layers: list[tuple[Mapping[str, Mapping[str, Any]], Callable[[str, str], str]]] = []
    if channels_file is not None:
        in_file = _read_channels_file(channels_file)
        layers.append((in_file, lambda name, setting: f"{channels_file}: channels.{name}.{setting}"))
    layers.append((environment, variable))  # the environment wins
    for layer, named in layers:
        for name, settings in layer.items():
            if not CHANNEL_NAME.match(name):
                raise ChannelConfigError(f"{name!r} is not a channel name ([a-z][a-z0-9_]{{0,31}})")
            found = raw.setdefault(name, _Raw(name, {}, {}))
            for setting, value in settings.items():
                origin = named(name, setting)
                secret = setting.removesuffix("_file")
                if secret != setting and secret in SECRETS:
                    found.set(secret, _read_secret(value, origin), origin)
                else:
                    found.set(setting, value, origin)
    channels = {name: _channel(found) for name, found in sorted(raw.items())}
    _one_marketplace_per_account(channels)
    return channels


class _ChannelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: dict[str, dict[str, Any]]


def _read_channels_file(path: Path) -> dict[str, dict[str, Any]]:
    # Read as policy files are (bounded, and an error names its line).
    try:
        channels = read_policy_file(path, _ChannelsFile).channels
    except PolicyFileError as exc:
        raise ChannelConfigError(f"CHANNELS_FILE {exc}") from None
    found: dict[str, dict[str, Any]] = {}
    for name, settings in channels.items():
        if not CHANNEL_NAME.match(name):
            raise ChannelConfigError(f"{path}: {name!r} is not a channel name ([a-z][a-z0-9_]{{0,31}})")
        values = {str(setting).lower(): value for setting, value in settings.items()}
        for key in values:
            if key in SECRETS:
                raise ChannelConfigError(
                    f"{path}: channels.{name}.{key} is a secret, which the channels file never holds: "
                    f"set {variable(name, key)}, or name a file holding it with {key}_file"
                )
        found[name] = values
    return found


def _read_secret(path: object, origin: str) -> str:
    try:
        return Path(str(path)).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ChannelConfigError(f"{origin}: the file {path} cannot be read ({type(exc).__name__})") from None


def _channel(found: _Raw) -> Channel:
    kind = _kind(found)
    values = {"kind": kind, **{k: v for k, v in found.values.items() if k != "kind"}}
    if kind == "amazon" and "marketplace_id" not in values and found.name in AMAZON_DEFAULT_MARKETPLACE:
        values["marketplace_id"] = AMAZON_DEFAULT_MARKETPLACE[found.name]
    unknown = sorted(set(values) - SETTINGS[kind])
    if unknown:
        raise ChannelConfigError(
            f"channel {found.name}: {found.where(unknown[0])} is not a setting of a {kind} channel"
        )
    try:
        settings = _MODELS[kind].model_validate(values)
    except ValidationError as exc:
        raise _invalid(found, exc) from None
    if isinstance(settings, AmazonSettings):
        return _amazon(found, settings)
    assert isinstance(settings, ShopifySettings)
    return _shopify(found, settings)


_KINDS: dict[str, Kind] = {"amazon": "amazon", "shopify": "shopify"}


def _kind(found: _Raw) -> Kind:
    given = found.values.get("kind")
    if given is None:
        prefix = found.name.split("_", 1)[0]
        if prefix in _KINDS and "_" in found.name:
            return _KINDS[prefix]
        raise ChannelConfigError(
            f"channel {found.name}: {found.where('kind')} is missing (amazon or shopify; it may be left "
            "out when the name starts with amazon_ or shopify_)"
        )
    kind = _KINDS.get(str(given).strip().lower())
    if kind is None:
        raise ChannelConfigError(
            f"channel {found.name}: {found.where('kind')} is {given!r}: amazon or shopify"
        )
    return kind


def _invalid(found: _Raw, exc: ValidationError) -> ChannelConfigError:
    error = exc.errors()[0]
    setting = str(error["loc"][0]) if error["loc"] else "kind"
    if error["type"] == "missing":
        return ChannelConfigError(f"channel {found.name}: {found.where(setting)} is missing")
    return ChannelConfigError(f"channel {found.name}: {found.where(setting)}: {error['msg']}")


def _policy_file(found: _Raw, reference: str, setting: str, kind: Kind) -> Path:
    """A built-in policy id, or a path to a policy file."""
    if reference in BUILT_IN_POLICIES:
        if BUILT_IN_POLICIES[reference] != kind:
            raise ChannelConfigError(
                f"channel {found.name}: {found.where(setting)} is {reference!r}, a policy of "
                f"{BUILT_IN_POLICIES[reference]} channels, not of {kind} channels"
            )
        return built_in_policy_file(reference)
    path = Path(reference)
    if not path.is_file():
        known = ", ".join(sorted(p for p, k in BUILT_IN_POLICIES.items() if k == kind))
        raise ChannelConfigError(
            f"channel {found.name}: {found.where(setting)} is {reference!r}, neither a built-in policy "
            f"({known}) nor a file"
        )
    return path


def _credentials(found: _Raw, settings: BaseModel, names: tuple[str, ...]) -> None:
    """Credentials come all together or not at all (then the channel runs on the sandbox)."""
    given = [name for name in names if getattr(settings, name)]
    if given and len(given) < len(names):
        missing = next(name for name in names if name not in given)
        raise ChannelConfigError(
            f"channel {found.name}: {found.where(missing)} is missing "
            f"({', '.join(found.where(name) for name in given)} set)"
        )


def _amazon(found: _Raw, settings: AmazonSettings) -> AmazonChannel:
    _credentials(found, settings, ("lwa_client_id", "lwa_client_secret", "refresh_token"))
    marketplace = MARKETPLACES.get(settings.marketplace_id)
    reference = settings.policy or (marketplace.policy if marketplace else None)
    if reference is None:
        name = f" ({marketplace.name})" if marketplace else ""
        raise ChannelConfigError(
            f"channel {found.name}: {found.where('policy')} is missing: the service has no built-in "
            f"policy for marketplace {settings.marketplace_id}{name}"
        )
    path = _policy_file(found, reference, "policy", "amazon")
    policy = read_policy_file(path, AmazonPolicy)
    if policy.marketplace_id is not None and policy.marketplace_id != settings.marketplace_id:
        raise ChannelConfigError(
            f"channel {found.name}: policy {policy.id} is for marketplace {policy.marketplace_id}, "
            f"the channel sells on {settings.marketplace_id} ({found.where('marketplace_id')})"
        )
    locales = _locales(found, settings.locales, policy.locales.offered, policy.id)
    return AmazonChannel(
        key=found.name,
        timezone=settings.timezone or policy.timezone,
        currency=policy.currency,
        locales=locales,
        transit_days=settings.transit_days,
        policy_file=path,
        policy_id=policy.id,
        marketplace_id=settings.marketplace_id,
        endpoint=settings.endpoint,
        lwa_token_url=settings.lwa_token_url,
        lwa_client_id=settings.lwa_client_id,
        lwa_client_secret=settings.lwa_client_secret,
        refresh_token=settings.refresh_token,
        get_order_rate=settings.get_order_rate,
        get_order_burst=settings.get_order_burst,
        seller_id=settings.seller_id,
        sqs_queue_url=settings.sqs_queue_url,
        mirror_days=settings.mirror_days,
    )


def _shopify(found: _Raw, settings: ShopifySettings) -> ShopifyChannel:
    if settings.policy and settings.policy_file:
        raise ChannelConfigError(
            f"channel {found.name}: {found.where('policy')} and {found.where('policy_file')} are both "
            "set; keep one"
        )
    if found.name not in ALWAYS and not settings.shop_domain:
        # Two stores are told apart by their domain: a webhook names its shop, nothing else does.
        raise ChannelConfigError(f"channel {found.name}: {found.where('shop_domain')} is missing")
    reference = settings.policy or settings.policy_file or "shopify-ca-default"
    setting = "policy_file" if settings.policy_file else "policy"
    return ShopifyChannel(
        key=found.name,
        timezone=settings.timezone or "America/Toronto",
        currency=settings.currency,
        locales=tuple(settings.locales or ()),
        transit_days=settings.transit_days,
        policy_file=_policy_file(found, reference, setting, "shopify"),
        shop_domain=settings.shop_domain.strip().lower() if settings.shop_domain else None,
        api_version=settings.api_version,
        access_token=settings.access_token,
        admin_url_override=settings.admin_url,
        webhook_secrets=tuple(settings.webhook_secrets),
    )


def _locales(
    found: _Raw, asked: list[Locale] | None, offered: list[Locale], policy: str
) -> tuple[Locale, ...]:
    if asked is None:
        return ()
    unknown = [locale.value for locale in asked if locale not in offered]
    if unknown:
        raise ChannelConfigError(
            f"channel {found.name}: {found.where('locales')} names {', '.join(unknown)}; policy {policy} "
            f"replies in {', '.join(locale.value for locale in offered)}"
        )
    return tuple(asked)


def _one_marketplace_per_account(channels: Mapping[str, Channel]) -> None:
    """An order's marketplace picks its channel: two channels of one account may not share one. And
    one seller authorisation lives in one SP-API region: its channels name one endpoint and token URL
    (its connector, its mirror and its reports are built once, from any of them)."""
    seen: dict[tuple[str, str], str] = {}
    regions: dict[str, tuple[str, str, str]] = {}
    for name, channel in channels.items():
        if not isinstance(channel, AmazonChannel):
            continue
        if channel.live:
            region = (channel.endpoint, channel.lwa_token_url)
            first, *first_region = regions.setdefault(channel.seller_account, (name, *region))
            if tuple(first_region) != region:
                raise ChannelConfigError(
                    f"channels {first} and {name} have the same seller account but name another SP-API "
                    "endpoint or token URL: give the channels of one account the same ENDPOINT and "
                    "LWA_TOKEN_URL"
                )
        key = (channel.seller_account, channel.marketplace_id)
        if key in seen:
            raise ChannelConfigError(
                f"channels {seen[key]} and {name} both sell on marketplace {channel.marketplace_id} with "
                "the same seller account: an order could not tell which it belongs to"
            )
        seen[key] = name
    domains: dict[str, str] = {}
    for name, channel in channels.items():
        if isinstance(channel, ShopifyChannel) and channel.shop_domain:
            if channel.shop_domain in domains:
                raise ChannelConfigError(
                    f"channels {domains[channel.shop_domain]} and {name} both name shop {channel.shop_domain}"
                )
            domains[channel.shop_domain] = name
