"""What every Selling Partner API connector of a seller account shares: one access token, and what
Amazon's refusals mean (getOrder, searchOrders and the Reports API answer them alike).
"""

from __future__ import annotations

import httpx

from app.channels import AmazonChannel
from app.connectors.amazon_auth import AccessTokens
from app.connectors.base import retry_after
from app.connectors.ratelimit import RateLimiter
from app.errors import (
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)


def access_tokens(channel: AmazonChannel, http: httpx.AsyncClient) -> AccessTokens:
    """Login with Amazon for the channel's seller account; `ValueError` without live credentials."""
    if not (channel.lwa_client_id and channel.lwa_client_secret and channel.refresh_token):
        raise ValueError(f"channel {channel.key} has no live credentials")
    return AccessTokens(
        http,
        token_url=channel.lwa_token_url,
        client_id=channel.lwa_client_id,
        client_secret=channel.lwa_client_secret,
        refresh_token=channel.refresh_token,
        label=f"{channel.key}.lwa_token",
    )


class SellerAccounts:
    """One access token per seller account, whichever of its connectors (and channels) asks."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._tokens: dict[str, AccessTokens] = {}

    def tokens(self, channel: AmazonChannel) -> AccessTokens:
        account = channel.seller_account
        if account not in self._tokens:
            self._tokens[account] = access_tokens(channel, self._http)
        return self._tokens[account]


async def refused(
    response: httpx.Response, said: str, *, tokens: AccessTokens, token: str, limiter: RateLimiter
) -> UpstreamError:
    """The error an SP-API refusal stands for, once the connector has handled its own statuses.

    A refused token is forgotten, so the next call asks Login with Amazon for a new one; a 429 means
    Amazon's bucket is empty whatever ours believed, so ours is made to agree, for every replica.
    """
    status = response.status_code
    if status in (401, 403):
        tokens.forget(token)
        return UpstreamAuthFailed(said)
    if status == 429:
        await limiter.exhausted()
        return UpstreamRateLimited(said, retry_after=retry_after(response))
    if status == 504:
        return UpstreamTimeout(said, retry_after=retry_after(response))
    if status >= 500:
        return UpstreamUnavailable(said, retry_after=retry_after(response))
    return UpstreamBadResponse(said)
