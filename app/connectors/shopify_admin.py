"""The Shopify Admin GraphQL transport: one POST per document, errors sorted into the service's families.

It knows nothing of orders or refunds: `ShopifyConnector` (shopify.py) says what to send and how
safe it is to send again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import structlog

from app import metrics
from app.channels import ShopifyChannel
from app.connectors.base import transport_error
from app.connectors.calls import recorded_call
from app.connectors.retry import RetryPolicy, with_retries
from app.connectors.shopify_throttle import CostThrottle
from app.errors import (
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)

log = structlog.get_logger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def only_throttled(error: UpstreamError) -> bool:
    """A throttled call never ran, so even a mutation without an idempotency key may be sent again."""
    return isinstance(error, UpstreamRateLimited)


class ShopifyAdmin:
    def __init__(
        self, channel: ShopifyChannel, http: httpx.AsyncClient, throttle: CostThrottle | None = None
    ) -> None:
        if channel.access_token is None:
            raise ValueError(f"channel {channel.key} has no Shopify access token")
        self.channel = channel
        self._http = http
        self._token = channel.access_token
        self.throttle = throttle or CostThrottle()
        self._label = f"{channel.key}.admin_graphql"  # a fixed metric label: never the operation's variables

    async def execute(
        self,
        operation: str,
        document: str,
        variables: Mapping[str, Any],
        *,
        retry: RetryPolicy,
        throttled_only: bool = False,
    ) -> Mapping[str, Any]:
        """The `data` of one document's answer, retried as `retry` allows.

        `throttled_only` is for mutations that must not be sent twice: only a refusal by the
        throttle, which guarantees nothing ran, is retried.
        """
        return await with_retries(
            lambda: self._send(operation, document, variables),
            retry,
            upstream=self._label,
            retryable=only_throttled if throttled_only else None,
        )

    async def _send(self, operation: str, document: str, variables: Mapping[str, Any]) -> Mapping[str, Any]:
        if await self.throttle.acquire(operation):
            metrics.record_throttle(self._label, "waited")
        async with recorded_call(self._label):
            try:
                response = await self._http.post(
                    self.channel.admin_url,
                    json={"query": document, "operationName": operation, "variables": dict(variables)},
                    headers={"X-Shopify-Access-Token": self._token.get_secret_value()},
                    timeout=TIMEOUT,
                )
            except httpx.TransportError as error:
                raise transport_error(error, f"Shopify ({operation})") from error
            return self._data(operation, response)

    def _data(self, operation: str, response: httpx.Response) -> Mapping[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise UpstreamAuthFailed(f"Shopify refused the access token ({status}).")
        body = _json(response) if status in (200, 429) else None
        extensions = body.get("extensions") if isinstance(body, Mapping) else None
        self.throttle.observe(operation, extensions if isinstance(extensions, Mapping) else None)
        if status == 429 or (body is not None and _has_code(body, "THROTTLED")):
            raise UpstreamRateLimited(
                f"Shopify throttled {operation}.", retry_after=self._retry_after(operation, response)
            )
        if status >= 500:
            raise UpstreamUnavailable(f"Shopify answered {status} to {operation}.")
        if status != 200 or not isinstance(body, Mapping):
            raise UpstreamBadResponse(f"Shopify answered {status} to {operation}, not a GraphQL result.")
        if _has_code(body, "ACCESS_DENIED"):
            raise UpstreamAuthFailed(
                f"Shopify denied {operation}: the app lacks an access scope "
                "(read_orders, read_all_orders, read_customers, read_returns, write_returns, write_orders, "
                "write_store_credit_account_transactions)."
            )
        errors = body.get("errors")
        if errors:
            log.warning("shopify_graphql_errors", operation=operation, count=len(errors))
            raise UpstreamBadResponse(f"Shopify answered {operation} with errors: {_messages(errors)}")
        data = body.get("data")
        if not isinstance(data, Mapping):
            raise UpstreamBadResponse(f"Shopify's answer to {operation} has no data.")
        return data

    def _retry_after(self, operation: str, response: httpx.Response) -> float:
        header = response.headers.get("Retry-After")
        try:
            if header is not None:
                return max(0.0, float(header))
        except ValueError:
            pass
        # The bucket's own figures say when the query becomes affordable; never less than a breath.
        return max(0.05, self.throttle.wait_for(self.throttle.cost_of(operation)))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _has_code(body: Mapping[str, Any], code: str) -> bool:
    errors = body.get("errors")
    if not isinstance(errors, list):
        return False
    return any(
        isinstance(error, Mapping)
        and isinstance(error.get("extensions"), Mapping)
        and error["extensions"].get("code") == code
        for error in errors
    )


def _messages(errors: Any) -> str:
    if not isinstance(errors, list):
        return "unreadable errors"
    texts = [str(e.get("message"))[:200] for e in errors[:3] if isinstance(e, Mapping)]
    return "; ".join(texts) or "unreadable errors"
