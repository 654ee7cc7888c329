"""Login with Amazon: the access token the Selling Partner API wants, from the seller's refresh token.

A token lasts an hour. It is kept and refreshed a minute before it expires; concurrent requests
that find it stale wait for one refresh instead of each asking for a token of their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr

from app.connectors.base import retry_after, transport_error
from app.connectors.calls import recorded_call
from app.errors import UpstreamAuthFailed, UpstreamBadResponse, UpstreamRateLimited, UpstreamUnavailable

UPSTREAM = "Login with Amazon"
TIMEOUT = httpx.Timeout(10.0, connect=3.0)
# Amazon's own SP-API clients refresh 60 s ahead: a token must not expire between check and use.
REFRESH_AHEAD = 60.0


class AccessTokens:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        refresh_token: SecretStr,
        label: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._label = label  # this upstream in the metrics
        self._token_url = token_url
        self._form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def current(self) -> str:
        """A valid access token, refreshed first when it is about to expire."""
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        async with self._lock:
            # Whoever held the lock before may have refreshed it already.
            if self._token is None or self._clock() >= self._refresh_at:
                self._token, lifetime = await self._refresh()
                self._refresh_at = self._clock() + max(0.0, lifetime - REFRESH_AHEAD)
            return self._token

    def forget(self, token: str) -> None:
        """The API refused `token`: the next request fetches a new one."""
        if self._token == token:
            self._token = None

    async def _refresh(self) -> tuple[str, float]:
        form = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in self._form.items()}
        async with recorded_call(self._label):
            try:
                response = await self._http.post(self._token_url, data=form, timeout=TIMEOUT)
            except httpx.TransportError as error:
                raise transport_error(error, UPSTREAM) from error
            return _token(_accepted(response))


def _accepted(response: httpx.Response) -> httpx.Response:
    """The response if it is the token's, else the error it means."""
    if response.status_code in (400, 401, 403):
        # invalid_grant (a revoked or wrong refresh token), invalid_client: no retry mends it.
        raise UpstreamAuthFailed(f"{UPSTREAM} refused the credentials ({_error_name(response)})")
    if response.status_code == 429:
        raise UpstreamRateLimited(
            f"{UPSTREAM} throttled the token request", retry_after=retry_after(response)
        )
    if response.status_code >= 500:
        raise UpstreamUnavailable(
            f"{UPSTREAM} answered {response.status_code}", retry_after=retry_after(response)
        )
    if response.status_code != 200:
        raise UpstreamBadResponse(f"{UPSTREAM} answered {response.status_code}")
    return response


def _token(response: httpx.Response) -> tuple[str, float]:
    try:
        body: Any = response.json()
    except ValueError as error:
        raise UpstreamBadResponse(f"{UPSTREAM} answered something that is not JSON") from error
    token = body.get("access_token") if isinstance(body, dict) else None
    lifetime = body.get("expires_in") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise UpstreamBadResponse(f"{UPSTREAM} answered without an access_token")
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        raise UpstreamBadResponse(f"{UPSTREAM} answered without a positive expires_in")
    return token, float(lifetime)


def _error_name(response: httpx.Response) -> str:
    """The OAuth `error` code of a refusal (never its description, which may echo credentials)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) and error.isidentifier() else f"HTTP {response.status_code}"
