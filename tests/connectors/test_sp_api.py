"""One access token per Amazon seller account, whichever connector of the account asks."""

from __future__ import annotations

import dataclasses

import httpx
from pydantic import SecretStr

from app.channels import AmazonChannel
from app.connectors.amazon import AmazonConnector
from app.connectors.amazon_reports import AmazonReports
from app.connectors.amazon_search import OrderSearch
from app.connectors.lookups import LocalCache
from app.connectors.ratelimit import LocalBuckets
from app.connectors.sp_api import SellerAccounts


def live(channel: AmazonChannel, refresh_token: str = "Atzr|seller-one", **changes: object) -> AmazonChannel:
    return dataclasses.replace(
        channel,
        lwa_client_id="amzn1.application-oa2-client.test",
        lwa_client_secret=SecretStr("client-secret"),
        refresh_token=SecretStr(refresh_token),
        **changes,
    )


async def test_the_connectors_of_one_seller_account_share_one_token(amazon_channel: AmazonChannel) -> None:
    us = live(amazon_channel)
    ca = live(amazon_channel, key="amazon_ca", marketplace_id="A2EUQ1WTGCTBG2")
    other_seller = live(amazon_channel, refresh_token="Atzr|seller-two", key="amazon_other")
    async with httpx.AsyncClient() as http:
        accounts, buckets = SellerAccounts(http), LocalBuckets()
        orders = AmazonConnector.build(
            [us, ca], http, buckets=buckets, cache=LocalCache(), max_wait=1, order_max_age=1,
            tokens=accounts.tokens(us),
        )  # fmt: skip
        search = OrderSearch.build([us, ca], http, buckets=buckets, tokens=accounts.tokens(ca))
        reports = AmazonReports.build(ca, http, buckets=buckets, tokens=accounts.tokens(ca))

        assert accounts.tokens(us) is accounts.tokens(ca)
        assert orders._tokens is search._tokens is reports._tokens
        assert accounts.tokens(other_seller) is not accounts.tokens(us)
