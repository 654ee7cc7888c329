"""The webhook signature, with Shopify's published example and the channel a signature names."""

from __future__ import annotations

from pydantic import SecretStr

from app.channels import ShopifyChannel
from app.services.webhooks.signature import signature_of, signing_channel, verifies

# Shopify's documented example: secret `steffi`, body {"foo":"bar"}.
SHOPIFY_VECTOR = ("steffi", b'{"foo":"bar"}', "/Redz4YXHLnSmmSN8grr5/Jl/Ua3d7yX3iWbjb8R8wo=")


def shopify(domain: str | None, *secrets: str) -> ShopifyChannel:
    return ShopifyChannel(
        key="shopify_ca",
        timezone="America/Toronto",
        currency="CAD",
        shop_domain=domain,
        api_version="2026-10",
        webhook_secrets=tuple(SecretStr(s) for s in secrets),
    )


def test_shopifys_published_example() -> None:
    secret, body, expected = SHOPIFY_VECTOR
    assert signature_of(secret, body) == expected
    assert verifies(body, expected, [SecretStr(secret)])


def test_a_tampered_body_does_not_verify() -> None:
    secret, body, expected = SHOPIFY_VECTOR
    assert not verifies(b'{"foo":"baz"}', expected, [SecretStr(secret)])
    assert not verifies(body + b" ", expected, [SecretStr(secret)])


def test_a_missing_or_garbled_signature_does_not_verify() -> None:
    secret, body, expected = SHOPIFY_VECTOR
    for presented in (None, "", expected[:-2], expected.lower(), "é" * 44):
        assert not verifies(body, presented, [SecretStr(secret)])


def test_either_secret_verifies_during_a_rotation() -> None:
    secret, body, expected = SHOPIFY_VECTOR
    assert verifies(body, expected, [SecretStr("the-new-one"), SecretStr(secret)])
    assert verifies(body, signature_of("the-new-one", body), [SecretStr("the-new-one"), SecretStr(secret)])
    assert not verifies(body, expected, [SecretStr("the-new-one")])


def test_without_secrets_nothing_verifies() -> None:
    secret, body, expected = SHOPIFY_VECTOR
    assert not verifies(body, expected, [])
    assert signing_channel({"shopify_ca": shopify(None)}, "x.myshopify.com", body, expected) is None


def test_the_shop_domain_names_the_channel() -> None:
    secret, body, expected = SHOPIFY_VECTOR
    configured = {"shopify_ca": shopify("maple.myshopify.com", secret)}
    assert signing_channel(configured, "Maple.myshopify.com", body, expected) is configured["shopify_ca"]
    # The right secret from another shop: not this channel's delivery.
    assert signing_channel(configured, "other.myshopify.com", body, expected) is None
    assert signing_channel(configured, None, body, expected) is None


def test_a_sandbox_channel_without_a_domain_accepts_its_secrets_from_any_shop() -> None:
    secret, body, expected = SHOPIFY_VECTOR
    sandbox = {"shopify_ca": shopify(None, secret)}
    assert signing_channel(sandbox, "anything.myshopify.com", body, expected) is sandbox["shopify_ca"]
    assert signing_channel(sandbox, "anything.myshopify.com", body, signature_of("other", body)) is None
