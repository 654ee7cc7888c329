"""Settings and the channels built from them."""

from __future__ import annotations

from pydantic import SecretStr

from app.settings import Settings


def test_a_copy_of_the_settings_builds_its_own_channels() -> None:
    sandbox = Settings(_env_file=None)  # type: ignore[call-arg]
    assert sandbox.channels["shopify_ca"].live is False

    live = sandbox.model_copy(
        update={
            "channel_shopify_ca_admin_url": "http://127.0.0.1:9/admin/api/2026-10/graphql.json",
            "channel_shopify_ca_access_token": SecretStr("shpat_test"),
        }
    )

    assert live.channels["shopify_ca"].live is True
    assert sandbox.channels["shopify_ca"].live is False


def test_webhook_secrets_are_split_on_commas() -> None:
    settings = Settings(_env_file=None, channel_shopify_ca_webhook_secrets="old, new")  # type: ignore[call-arg]
    assert [secret.get_secret_value() for secret in settings.channel_shopify_ca_webhook_secrets] == [
        "old",
        "new",
    ]
