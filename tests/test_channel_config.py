"""Channels as configuration: `CHANNEL_<NAME>_<SETTING>` variables (the environment and `.env`) and the
`CHANNELS_FILE` YAML, read through `Settings` as the service reads them at start-up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.channel_config import ChannelConfigError, split_variable
from app.channels import AmazonChannel, ShopifyChannel
from app.domain import Locale
from app.policy import PolicyFileError
from app.policy.book import built_in_policy_file
from app.runtime import load_policy_book
from app.settings import Settings

AMAZON_CA = {"CHANNEL_AMAZON_CA_MARKETPLACE_ID": "A2EUQ1WTGCTBG2"}
CREDENTIALS = {
    "LWA_CLIENT_ID": "amzn1.application-oa2-client.test",
    "LWA_CLIENT_SECRET": "client-secret",
    "REFRESH_TOKEN": "Atzr|seller",
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment, with no CHANNEL_* variable of the machine's own."""
    for name in list(os.environ):
        if name.upper().startswith("CHANNEL") or name.upper() == "CHANNELS_FILE":
            monkeypatch.delenv(name)
    return monkeypatch


def settings(**fields: object) -> Settings:
    return Settings(_env_file=None, **fields)  # type: ignore[call-arg]


def test_without_any_setting_the_two_built_in_channels_run_on_the_sandbox(environment: object) -> None:
    channels = settings().channels

    assert set(channels) == {"amazon_us", "shopify_ca"}
    amazon, shopify = channels["amazon_us"], channels["shopify_ca"]
    assert isinstance(amazon, AmazonChannel)
    assert isinstance(shopify, ShopifyChannel)
    assert (amazon.marketplace_id, amazon.policy_id, amazon.currency, amazon.timezone) == (
        "ATVPDKIKX0DER",
        "amazon-us",
        "USD",
        "America/Los_Angeles",
    )
    assert (shopify.currency, shopify.timezone, shopify.policy_file) == (
        "CAD",
        "America/Toronto",
        built_in_policy_file("shopify-ca-default"),
    )
    assert not amazon.live
    assert not shopify.live


def test_a_channel_from_variables_takes_its_marketplaces_policy(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("CHANNEL_AMAZON_CA_MARKETPLACE_ID", "A2EUQ1WTGCTBG2")

    amazon_ca = settings().channels["amazon_ca"]

    assert isinstance(amazon_ca, AmazonChannel)
    assert (amazon_ca.policy_id, amazon_ca.currency, amazon_ca.timezone, amazon_ca.live) == (
        "amazon-ca",
        "CAD",
        "America/Toronto",
        False,
    )
    market = amazon_ca.market
    assert (market.marketplace, market.currency, market.policy) == ("A2EUQ1WTGCTBG2", "CAD", "amazon-ca")
    assert not hasattr(market, "refresh_token")


def test_the_existing_variables_work_unchanged(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("CHANNEL_AMAZON_US_TIMEZONE", "America/New_York")
    environment.setenv("CHANNEL_SHOPIFY_CA_SHOP_DOMAIN", "Maple-And-Thread.myshopify.com")
    environment.setenv("CHANNEL_SHOPIFY_CA_ACCESS_TOKEN", "shpat_x")
    environment.setenv("CHANNEL_SHOPIFY_CA_WEBHOOK_SECRETS", "old, new")
    for setting, value in CREDENTIALS.items():
        environment.setenv(f"CHANNEL_AMAZON_US_{setting}", value)

    channels = settings().channels

    amazon, shopify = channels["amazon_us"], channels["shopify_ca"]
    assert isinstance(amazon, AmazonChannel)
    assert isinstance(shopify, ShopifyChannel)
    assert (amazon.timezone, amazon.live) == ("America/New_York", True)
    assert (shopify.shop_domain, shopify.live) == ("maple-and-thread.myshopify.com", True)
    assert [secret.get_secret_value() for secret in shopify.webhook_secrets] == ["old", "new"]


def test_the_channels_file_declares_channels_and_a_variable_wins_over_it(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text(
        "channels:\n"
        "  amazon_ca:\n"
        "    marketplace_id: A2EUQ1WTGCTBG2\n"
        "    transit_days: 7\n"
        "    locales: [fr-CA, en-CA]\n"
        "  shopify_us:\n"
        "    shop_domain: maple-and-thread-us.myshopify.com\n"
        "    timezone: America/New_York\n"
        "    currency: USD\n"
        "    policy: shopify-ca-default\n",
        encoding="utf-8",
    )
    environment.setenv("CHANNEL_AMAZON_CA_TRANSIT_DAYS", "3")

    channels = settings(channels_file=path).channels

    amazon_ca, shopify_us = channels["amazon_ca"], channels["shopify_us"]
    assert isinstance(amazon_ca, AmazonChannel)
    assert isinstance(shopify_us, ShopifyChannel)
    assert amazon_ca.transit_days == 3  # the environment wins
    assert amazon_ca.locales == (Locale.fr_ca, Locale.en_ca)
    assert (shopify_us.shop_domain, shopify_us.timezone, shopify_us.currency) == (
        "maple-and-thread-us.myshopify.com",
        "America/New_York",
        "USD",
    )


def test_the_dotenv_file_declares_channels_too(environment: object, tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("CHANNEL_AMAZON_CA_MARKETPLACE_ID=A2EUQ1WTGCTBG2\n", encoding="utf-8")

    channels = Settings(_env_file=dotenv).channels  # type: ignore[call-arg]

    assert channels["amazon_ca"].currency == "CAD"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"CHANNEL_AMAZON_CA_LWA_CLIENT_ID": "amzn1.x"},
            "channel amazon_ca: CHANNEL_AMAZON_CA_MARKETPLACE_ID is missing",
        ),
        (
            {
                **AMAZON_CA,
                "CHANNEL_AMAZON_CA_LWA_CLIENT_ID": "amzn1.x",
                "CHANNEL_AMAZON_CA_REFRESH_TOKEN": "t",
            },
            "channel amazon_ca: CHANNEL_AMAZON_CA_LWA_CLIENT_SECRET is missing "
            "(CHANNEL_AMAZON_CA_LWA_CLIENT_ID, CHANNEL_AMAZON_CA_REFRESH_TOKEN set)",
        ),
        (
            {"CHANNEL_AMAZON_MX_MARKETPLACE_ID": "A1AM78C64UM0Y8"},
            "channel amazon_mx: CHANNEL_AMAZON_MX_POLICY is missing: the service has no built-in policy "
            "for marketplace A1AM78C64UM0Y8 (Amazon.com.mx)",
        ),
        (
            {"CHANNEL_SHOPIFY_US_ACCESS_TOKEN": "shpat_x"},
            "channel shopify_us: CHANNEL_SHOPIFY_US_SHOP_DOMAIN",
        ),
        ({"CHANNEL_EBAY_DE_TIMEZONE": "Europe/Berlin"}, "channel ebay_de: CHANNEL_EBAY_DE_KIND is missing"),
        ({"CHANNEL_MARKET_KIND": "ebay"}, "CHANNEL_MARKET_KIND is 'ebay': amazon or shopify"),
        (
            {"CHANNEL_AMAZON_CA_MARKETPLACEID": "A2EUQ1WTGCTBG2"},
            "CHANNEL_AMAZON_CA_MARKETPLACEID is not a channel",
        ),
        (
            {**AMAZON_CA, "CHANNEL_AMAZON_CA_SHOP_DOMAIN": "x.myshopify.com"},
            "CHANNEL_AMAZON_CA_SHOP_DOMAIN is not a setting of a amazon channel",
        ),
        ({**AMAZON_CA, "CHANNEL_AMAZON_CA_TIMEZONE": "Canada/Nowhere"}, "not an IANA time zone"),
        ({**AMAZON_CA, "CHANNEL_AMAZON_CA_LOCALES": "en-US"}, "CHANNEL_AMAZON_CA_LOCALES"),
        ({**AMAZON_CA, "CHANNEL_AMAZON_CA_LOCALES": "fr-FR"}, "CHANNEL_AMAZON_CA_LOCALES"),
        (
            {**AMAZON_CA, "CHANNEL_AMAZON_CA_POLICY": "amazon-us"},
            "channel amazon_ca: policy amazon-us is for marketplace ATVPDKIKX0DER, the channel sells on "
            "A2EUQ1WTGCTBG2",
        ),
        (
            {"CHANNEL_SHOPIFY_US_SHOP_DOMAIN": "us.myshopify.com", "CHANNEL_SHOPIFY_US_POLICY": "amazon-ca"},
            "CHANNEL_SHOPIFY_US_POLICY is 'amazon-ca', a policy of amazon channels, not of shopify channels",
        ),
        (
            {
                "CHANNEL_SHOPIFY_US_SHOP_DOMAIN": "us.myshopify.com",
                "CHANNEL_SHOPIFY_US_POLICY": "/no/such.yaml",
            },
            "neither a built-in policy (shopify-ca-default) nor a file",
        ),
        (
            {"CHANNEL_AMAZON_US2_MARKETPLACE_ID": "ATVPDKIKX0DER"},
            "channels amazon_us and amazon_us2 both sell on marketplace ATVPDKIKX0DER",
        ),
        (
            {
                "CHANNEL_SHOPIFY_CA_SHOP_DOMAIN": "maple.myshopify.com",
                "CHANNEL_SHOPIFY_US_SHOP_DOMAIN": "MAPLE.myshopify.com",
            },
            "channels shopify_ca and shopify_us both name shop maple.myshopify.com",
        ),
    ],
)
def test_an_incomplete_or_wrong_channel_stops_start_up_naming_the_setting(
    environment: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        environment.setenv(name, value)

    with pytest.raises(ChannelConfigError) as raised:
        _ = settings().channels

    assert message in str(raised.value)


def test_the_channels_file_never_holds_a_secret(environment: object, tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text(
        "channels:\n  shopify_us:\n    shop_domain: us.myshopify.com\n    access_token: shpat_x\n"
    )

    with pytest.raises(ChannelConfigError) as raised:
        _ = settings(channels_file=path).channels

    assert "channels.shopify_us.access_token is a secret" in str(raised.value)
    assert "CHANNEL_SHOPIFY_US_ACCESS_TOKEN" in str(raised.value)
    assert "shpat_x" not in str(raised.value)


def test_a_secret_comes_from_a_file_the_operator_names(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("shpat_from_file\n", encoding="utf-8")
    path = tmp_path / "channels.yaml"
    path.write_text(
        f"channels:\n  shopify_us:\n    shop_domain: us.myshopify.com\n    access_token_file: {token}\n"
    )
    environment.setenv("CHANNEL_AMAZON_CA_MARKETPLACE_ID", "A2EUQ1WTGCTBG2")
    for setting, value in CREDENTIALS.items():
        environment.setenv(f"CHANNEL_AMAZON_CA_{setting}", value)
    secret = tmp_path / "refresh"
    secret.write_text("Atzr|from-file", encoding="utf-8")
    environment.setenv("CHANNEL_AMAZON_CA_REFRESH_TOKEN_FILE", str(secret))

    channels = settings(channels_file=path).channels

    shopify_us, amazon_ca = channels["shopify_us"], channels["amazon_ca"]
    assert isinstance(shopify_us, ShopifyChannel)
    assert isinstance(amazon_ca, AmazonChannel)
    assert shopify_us.access_token == SecretStr("shpat_from_file")
    assert amazon_ca.refresh_token == SecretStr("Atzr|from-file")
    assert "from-file" not in repr(amazon_ca)


def test_channels_with_the_same_credentials_are_one_seller_account(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("CHANNEL_AMAZON_CA_MARKETPLACE_ID", "A2EUQ1WTGCTBG2")
    for setting, value in CREDENTIALS.items():
        environment.setenv(f"CHANNEL_AMAZON_US_{setting}", value)
        environment.setenv(f"CHANNEL_AMAZON_CA_{setting}", value)
    environment.setenv("CHANNEL_AMAZON_MX_MARKETPLACE_ID", "A1AM78C64UM0Y8")
    environment.setenv("CHANNEL_AMAZON_MX_POLICY", str(built_in_policy_file("amazon-us")))

    with pytest.raises(ChannelConfigError, match="amazon-us is for marketplace ATVPDKIKX0DER"):
        _ = settings().channels  # an Amazon.com policy cannot decide Amazon.com.mx orders
    environment.delenv("CHANNEL_AMAZON_MX_MARKETPLACE_ID")
    environment.delenv("CHANNEL_AMAZON_MX_POLICY")
    channels = settings().channels

    us, ca = channels["amazon_us"], channels["amazon_ca"]
    assert isinstance(us, AmazonChannel)
    assert isinstance(ca, AmazonChannel)
    assert us.seller_account == ca.seller_account != "sandbox"
    environment.setenv("CHANNEL_AMAZON_CA_REFRESH_TOKEN", "Atzr|another-seller")
    other = settings().channels["amazon_ca"]
    assert isinstance(other, AmazonChannel)
    assert other.seller_account != us.seller_account


def test_one_seller_account_in_two_regions_stops_start_up(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("CHANNEL_AMAZON_CA_MARKETPLACE_ID", "A2EUQ1WTGCTBG2")
    for setting, value in CREDENTIALS.items():
        environment.setenv(f"CHANNEL_AMAZON_US_{setting}", value)
        environment.setenv(f"CHANNEL_AMAZON_CA_{setting}", value)
    environment.setenv("CHANNEL_AMAZON_CA_ENDPOINT", "https://sellingpartnerapi-eu.amazon.com")

    with pytest.raises(ChannelConfigError, match="amazon_ca and amazon_us have the same seller account"):
        _ = settings().channels
    environment.setenv("CHANNEL_AMAZON_CA_REFRESH_TOKEN", "Atzr|another-seller")
    assert settings().channels["amazon_ca"].key == "amazon_ca"  # another account may live elsewhere


def test_a_shopify_channel_whose_policy_states_another_currency_stops_start_up(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("CHANNEL_SHOPIFY_US_SHOP_DOMAIN", "us.myshopify.com")
    environment.setenv("CHANNEL_SHOPIFY_US_CURRENCY", "USD")  # the default policy's amounts are CAD
    configured = settings()

    with pytest.raises(PolicyFileError) as raised:
        load_policy_book(configured)

    assert raised.value.source == "channel shopify_us"
    assert "states its amounts in CAD, the channel's currency is USD" in str(raised.value)


def test_a_shopify_channel_replies_only_in_locales_its_policy_offers(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("CHANNEL_SHOPIFY_CA_LOCALES", "en-US")

    with pytest.raises(PolicyFileError, match="LOCALES names en-US; policy shopify-ca-default replies in"):
        load_policy_book(settings())


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("channel_amazon_ca_marketplace_id", ("amazon_ca", "marketplace_id")),
        ("CHANNEL_AMAZON_CA_LWA_TOKEN_URL", ("amazon_ca", "lwa_token_url")),
        ("channel_shopify_us_policy_file", ("shopify_us", "policy_file")),
        ("channel_shopify_us_policy", ("shopify_us", "policy")),
        ("channel_amazon_ca_refresh_token_file", ("amazon_ca", "refresh_token_file")),
        ("channel_my_store_2_kind", ("my_store_2", "kind")),
    ],
)
def test_a_variable_name_splits_at_its_longest_setting(name: str, split: tuple[str, str]) -> None:
    assert split_variable(name) == split


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("channels: [amazon_ca]\n", "channels: Input should be a valid dictionary"),
        (
            "channels:\n  amazon_ca: A2EUQ1WTGCTBG2\n",
            "channels.amazon_ca: Input should be a valid dictionary",
        ),
        ("channels:\n  Amazon-CA: {marketplace_id: A2EUQ1WTGCTBG2}\n", "'Amazon-CA' is not a channel name"),
        ("shops: {}\n", "line 1"),
    ],
)
def test_a_channels_file_that_is_not_one_says_where(
    environment: object, tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ChannelConfigError) as raised:
        _ = settings(channels_file=path).channels

    assert str(path) in str(raised.value)
    assert problem in str(raised.value)
