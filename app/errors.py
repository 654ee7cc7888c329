"""Domain errors, each with an HTTP status and a stable `code`, rendered once as problem+json."""

from __future__ import annotations

from typing import Any, ClassVar


class ProblemError(Exception):
    """An error the API answers as `application/problem+json` (RFC 9457)."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


class ValidationProblem(ProblemError):
    status = 422
    code = "validation_error"
    title = "The request is not valid"


class InvalidPolicy(ProblemError):
    status = 422
    code = "invalid_policy"
    title = "The policy is not valid"


class MalformedBody(ProblemError):
    status = 400
    code = "malformed_body"
    title = "The body is not valid JSON"


class Unauthenticated(ProblemError):
    status = 401
    code = "unauthenticated"
    title = "Missing or unknown API key"


class Forbidden(ProblemError):
    status = 403
    code = "forbidden"
    title = "The API key lacks the scope"


class NotFound(ProblemError):
    status = 404
    code = "not_found"
    title = "Not found"


class InvalidSignature(ProblemError):
    status = 401
    code = "invalid_signature"
    title = "The webhook's signature does not verify"


class InvalidCursor(ProblemError):
    status = 422
    code = "invalid_cursor"
    title = "The cursor is not one this service gave"


class OrderNotFound(NotFound):
    code = "order_not_found"
    title = "Order not found"


class DecisionNotFound(NotFound):
    code = "decision_not_found"
    title = "Decision not found"


class UnknownChannel(ProblemError):
    status = 422
    code = "unknown_channel"
    title = "Unknown channel"


class UnrecognisedOrderRef(ProblemError):
    status = 422
    code = "unrecognised_order_ref"
    title = "The order reference matches no configured channel"


class ChannelMismatch(ProblemError):
    status = 409
    code = "channel_mismatch"
    title = "The order belongs to another channel"


class UnsupportedMarketplace(ProblemError):
    status = 422
    code = "unsupported_marketplace"
    title = "The order is from a marketplace no channel is configured for"


class AmbiguousOrderRef(ProblemError):
    status = 409
    code = "ambiguous_order_ref"
    title = "The order reference names an order in more than one channel"


class IdempotencyConflict(ProblemError):
    status = 422
    code = "idempotency_conflict"
    title = "Idempotency-Key reused with a different request"


class IdempotencyInFlight(ProblemError):
    status = 409
    code = "idempotency_in_flight"
    title = "A request with this Idempotency-Key is still running"


class ActionNotAllowed(ProblemError):
    status = 409
    code = "action_not_allowed"
    title = "Action not allowed on this decision"


class AlreadySettled(ProblemError):
    """Units of an order line that an earlier action or a refund made in Shopify settled already."""

    status = 409
    code = "already_settled"
    title = "Already refunded, credited or exchanged"


class UpstreamError(ProblemError):
    """Trouble with a channel's API. `temporary` errors may be retried by the connector."""

    status = 502
    code = "upstream_bad_response"
    title = "The channel answered badly"
    temporary: ClassVar[bool] = False
    # What a 503 tells the caller when the channel named no wait of its own: the contract promises one.
    default_retry_after: ClassVar[float | None] = None

    def __init__(self, detail: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        headers = dict(kwargs.pop("headers", None) or {})
        wait = retry_after if retry_after is not None else self.default_retry_after
        if wait is not None:
            headers.setdefault("Retry-After", str(max(1, round(wait))))
        super().__init__(detail, headers=headers, **kwargs)
        self.retry_after = retry_after


class UpstreamBadResponse(UpstreamError):
    """The channel answered with something the service cannot use (malformed, unexpected)."""


class UpstreamAuthFailed(UpstreamError):
    code = "upstream_auth_failed"
    title = "The channel refused the service's credentials"


class UpstreamUnavailable(UpstreamError):
    status = 503
    code = "upstream_unavailable"
    title = "The channel is unavailable"
    temporary = True
    default_retry_after = 5.0


class UpstreamRateLimited(UpstreamError):
    status = 503
    code = "upstream_rate_limited"
    title = "The channel's rate limit is reached"
    temporary = True
    default_retry_after = 5.0


class RateLimitWaitTooLong(UpstreamRateLimited):
    """The service's own bucket for the channel has a longer backlog than a request may wait.

    Not retried: the bound exists so that the caller gets its 503 and `Retry-After` now.
    """

    temporary = False


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
    title = "The channel did not answer in time"
    temporary = True


class DatabaseUnavailable(ProblemError):
    status = 503
    code = "database_unavailable"
    title = "The database is unavailable"


class Overloaded(ProblemError):
    """More unverified webhook bodies in flight than the service holds in memory at once."""

    status = 503
    code = "overloaded"
    title = "Too many requests in flight"


class MigrationsPending(ProblemError):
    status = 503
    code = "migrations_pending"
    title = "Not ready"


class SimulationUnavailable(ProblemError):
    """A policy simulation cannot run now: too many are running, or its worker failed."""

    status = 503
    code = "simulation_unavailable"
    title = "The simulation cannot run now"


class RequestTimeout(ProblemError):
    status = 408
    code = "request_timeout"
    title = "The body took too long to arrive"


class BodyTooLarge(ProblemError):
    status = 413
    code = "body_too_large"
    title = "The body is too large"


class UnsupportedMediaType(ProblemError):
    status = 415
    code = "unsupported_media_type"
    title = "The body must be JSON"


class ShopifyRejected(ProblemError):
    """Shopify refused a mutation with `userErrors`: nothing was created; the input must change."""

    status = 422
    code = "shopify_rejected"
    title = "Shopify refused the action"
