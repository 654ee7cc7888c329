"""The shared vocabulary of the service: orders, return requests and decisions.

Everything here is a plain value. Connectors produce `Order`, the HTTP layer produces
`ReturnRequest`, the policy turns both into a `PolicyResult`, and the service stores the
`Decision` that the API answers with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    Strict,
    StringConstraints,
    WithJsonSchema,
    model_serializer,
    model_validator,
)


class Platform(StrEnum):
    amazon = "amazon"
    shopify = "shopify"


@dataclass(frozen=True)
class Market:
    """Where an order was sold, as a policy needs it: the channel, its platform, its calendar, its money
    and languages, and the platform policy that decides it.

    Built from a channel's configuration; it never carries credentials or endpoints.
    """

    channel: str
    platform: Platform
    zone: ZoneInfo
    transit_days: int
    marketplace: str | None = None  # the Amazon marketplace id, or the Shopify shop domain
    currency: str | None = None  # the marketplace's or the shop's currency
    locales: tuple[Locale, ...] = ()  # the locales the channel replies in; empty: its policy's
    policy: str | None = None  # the platform policy's id (Amazon); a store's own is loaded per channel


class Fulfillment(StrEnum):
    amazon = "amazon"  # FBA / AFN: Amazon ships, handles the return and refunds
    merchant = "merchant"  # MFN: the seller ships
    shopify = "shopify"


class DeliverySource(StrEnum):
    carrier = "carrier"  # the channel gave the exact delivery time
    promised = "promised"  # the latest promised delivery time
    estimated = "estimated"  # ship time plus the channel's transit estimate


class Reason(StrEnum):
    """Why the customer returns the item. The channel's policy gives each reason a fault.

    - `damaged`: it arrived broken or spoilt (seller's fault).
    - `defective`: it does not work (seller's fault).
    - `wrong_item`: another item than the one ordered came (seller's fault).
    - `not_as_described`: it differs from the listing (seller's fault).
    - `missing_parts`: parts or accessories are missing (seller's fault).
    - `arrived_late`: it came after the promised date (seller's fault).
    - `no_longer_needed`: the customer changed their mind (customer's fault).
    - `size_or_fit`: it does not fit (customer's fault).
    - `better_price`: the customer found it cheaper (customer's fault).
    - `other`: anything else, and the default (customer's fault).

    Under the default policies, the seller's fault means the seller pays return shipping and no
    restocking fee is due; on Shopify the return stays eligible up to 90 days after delivery, a
    final-sale line can come back, and a return worth 20.00 CAD or less is returnless. The customer's
    fault means return shipping may be charged to the customer; on Shopify a refund (not an exchange
    or store credit) carries a 15% restocking fee and final-sale lines cannot come back. On Amazon the
    reason also picks the reply template.
    """

    damaged = "damaged"
    defective = "defective"
    wrong_item = "wrong_item"
    not_as_described = "not_as_described"
    missing_parts = "missing_parts"
    no_longer_needed = "no_longer_needed"
    size_or_fit = "size_or_fit"
    arrived_late = "arrived_late"
    better_price = "better_price"
    other = "other"


class Fault(StrEnum):
    seller = "seller"
    customer = "customer"


class Resolution(StrEnum):
    refund = "refund"
    exchange = "exchange"
    store_credit = "store_credit"


class RequestedResolution(StrEnum):
    """What the customer asked for.

    - `refund`: their money back.
    - `exchange`: another variant or item instead.
    - `store_credit`: credit to spend at the store.
    - `unknown`: not said, and the default.

    It is recorded in the decision for the agent and for reporting, and changes neither eligibility
    nor the options: `policy.resolution_options` lists what the policy allows, in the business's order
    of preference (a merchant's exchange and store credit before a refund; on Amazon only `refund`,
    through Amazon's own flow). An action the options do not hold is refused (409 `action_not_allowed`).
    """

    refund = "refund"
    exchange = "exchange"
    store_credit = "store_credit"
    unknown = "unknown"


class Classification(StrEnum):
    compliance_return = "compliance_return"
    retention_refund = "retention_refund"


class Locale(StrEnum):
    en_us = "en-US"
    en_ca = "en-CA"
    fr_ca = "fr-CA"


class RefundTrigger(StrEnum):
    carrier_scan = "carrier_scan"
    amazon = "amazon"
    return_received = "return_received"
    immediate = "immediate"


class PolicyOwner(StrEnum):
    platform = "platform"
    merchant = "merchant"


def _decimal_string(value: Decimal) -> str:
    return format(value, "f")


# Decimals go over the wire as strings ("12.50"), never as floats. The document shows one shape for
# reading and writing alike, so that every client generator sees one `Money`; a JSON number sent in a
# request is still read.
DecimalStr = Annotated[
    Decimal,
    PlainSerializer(_decimal_string, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["12.50"]}),
]
Percent = Annotated[
    Decimal,
    Field(ge=0, le=100),
    PlainSerializer(lambda v: format(v.normalize(), "f"), return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{1,3}(\.\d+)?$",
            "description": "A percentage from 0 to 100, as a decimal string.",
            "examples": ["15"],
        }
    ),
]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of `currency`: 0.01 for USD and CAD, 1 for JPY."""
    return Decimal(1).scaleb(-get_currency_precision(currency))


class Money(BaseModel):
    """An amount in one currency. Arithmetic stays exact; `rounded()` is applied once, at the end."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "description": 'An amount in one currency: `{"amount": "12.50", "currency": "CAD"}`.',
        },
    )

    amount: DecimalStr = Field(description="A decimal string, never a float.")
    currency: CurrencyCode = Field(description="ISO 4217.", examples=["CAD"])

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal(0), currency=currency).rounded()

    def rounded(self) -> Money:
        """Half-up to the currency's minor unit."""
        amount = self.amount.quantize(minor_unit(self.currency), rounding=ROUND_HALF_UP)
        return Money(amount=amount, currency=self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def times(self, factor: Decimal | int) -> Money:
        return Money(amount=self.amount * factor, currency=self.currency)

    def percent(self, percent: Decimal) -> Money:
        return Money(amount=self.amount * percent / 100, currency=self.currency)


# --- What an action sends and what went wrong, as stored with the action ---------------------


class PlannedPayment(BaseModel):
    """One payment of a refund: the gateway and the transaction it refunds, and how much."""

    model_config = ConfigDict(frozen=True)

    gateway: str
    parent_id: str | None
    amount: Money


class ActionPlan(BaseModel):
    """What an action is to send, worked out before anything is: lines as (line GID, quantity)."""

    model_config = ConfigDict(frozen=True)

    lines: list[tuple[str, int]]
    fee_percent: Decimal | None = None  # refund: the restocking fee kept
    notify: bool = True  # refund: Shopify emails the customer
    note: str | None = None  # refund: the agent's note
    transactions: list[PlannedPayment] = []  # refund: net of the fee, once Shopify suggested them
    exchange_for: list[tuple[str, int]] = []  # exchange: (ProductVariant GID, quantity)
    return_lines: list[tuple[str, int]] = []  # exchange: (FulfillmentLineItem GID, quantity)
    amount: Money | None = None  # store credit


class ActionError(BaseModel):
    """Why an action failed or stands unknown: a problem's code and detail."""

    model_config = ConfigDict(frozen=True)

    code: str
    detail: str
    errors: list[dict[str, Any]] | None = None


# --- Orders, as every connector normalises them (no buyer PII) -------------------------


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_id: str = Field(
        description="The channel's id of the line (Amazon orderItemId, Shopify LineItem GID)."
    )
    sku: str | None
    title: str
    quantity: int = Field(ge=0)
    unit_price: Money = Field(description="Price of one unit in the shop's currency.")
    presentment_unit_price: Money | None = Field(
        default=None, description="Price of one unit in the currency the customer paid in, where it differs."
    )
    product_type: str | None = None
    tags: list[str] = Field(default_factory=list)


class Order(BaseModel):
    """An order as the policy sees it, whatever channel it came from."""

    model_config = ConfigDict(frozen=True)

    channel: str
    platform: Platform
    order_ref: str = Field(
        description="The reference people use: Amazon order id, Shopify order name (#1001)."
    )
    order_id: str = Field(description="The channel's own id: Amazon order id, Shopify Order GID.")
    placed_at: AwareDatetime
    shipped_at: AwareDatetime | None = None
    delivered_at: AwareDatetime | None = None
    delivered_at_source: DeliverySource | None = None
    fulfillment: Fulfillment
    currency: CurrencyCode = Field(
        description="The shop's currency, in which the policy's thresholds compare."
    )
    presentment_currency: CurrencyCode | None = None
    total: Money
    ship_to_country: str | None = None
    ship_to_region: str | None = Field(default=None, description="State or province code.")
    customer_locale: str | None = Field(
        default=None, description="The language the customer chose at checkout."
    )
    earlier_returns_at: list[AwareDatetime] = Field(
        default_factory=list,
        description="When the same customer's earlier returns were created (Shopify; for the review rule).",
    )
    lines: list[OrderLine]
    sandbox: bool = False
    updated_at: AwareDatetime | None = Field(
        default=None, description="When the channel last changed the order (Amazon's lastUpdatedTime)."
    )
    mirrored_at: AwareDatetime | None = Field(
        default=None,
        description="When the order mirror last confirmed the order, for an order read from the mirror; "
        "None for one fetched from the channel for this request.",
    )
    missing: list[str] = Field(
        default_factory=list,
        description=(
            "What the channel's answer left out, each with what was assumed instead "
            "(`fulfillment.fulfilledBy: not given; taken as seller-fulfilled`), for the decision to explain."
        ),
    )

    @property
    def shipped(self) -> bool:
        return self.shipped_at is not None or self.delivered_at is not None


# --- The request ---------------------------------------------------------------------


class ReturnItem(BaseModel):
    """A line that comes back, named by its SKU or, for a line without one, by the channel's line id."""

    model_config = ConfigDict(extra="forbid")

    sku: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = Field(
        default=None,
        description="The SKU of an order line. A SKU on several lines fills them in order.",
        examples=["KET-01"],
    )
    line_id: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = Field(
        default=None,
        description=(
            "The channel's id of the line (a Shopify LineItem GID, an Amazon orderItemId), for a line "
            "that has no SKU; give `sku` or `line_id`, not both."
        ),
        examples=["gid://shopify/LineItem/1071823190"],
    )
    quantity: Annotated[int, Strict()] = Field(
        default=1,
        ge=1,
        le=10_000,
        description="Units coming back. On a route, more than the order holds is capped at what it holds.",
        examples=[1],
    )

    @model_validator(mode="after")
    def _named_once(self) -> Self:
        if (self.sku is None) == (self.line_id is None):
            raise ValueError("name the line by `sku` or by `line_id`, one of the two")
        return self

    @model_serializer(mode="wrap")
    def _only_the_name_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Stored and shown as it was asked: by SKU, or by line id, never a null for the other.
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


_RFC3339_START = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _text_only(value: object) -> object:
    # JSON has no date-time type and a query string only text: a moment arrives as RFC 3339 text.
    # Lax pydantic would also read a number ("1700000000", "0.5") as seconds since 1970, which the
    # contract does not allow.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339_START.match(value):
        raise ValueError("must be an RFC 3339 date-time string")
    return value


# Moments a request may name: windows and deadlines are counted from them, and a moment near the
# ends of the calendar Python knows would overflow (year 1, an hour east of UTC, has no UTC at all).
FIRST_YEAR, LAST_YEAR = 1970, 2999


def _within_years(value: datetime) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be between the years {FIRST_YEAR} and {LAST_YEAR}")
    return value


RequestTime = Annotated[AwareDatetime, BeforeValidator(_text_only), AfterValidator(_within_years)]


def _strip(value: str) -> str:
    return value.strip()


OrderRef = Annotated[str, AfterValidator(_strip), StringConstraints(min_length=1, max_length=255)]


# The contract's example request: shown in the OpenAPI document, and what bench/route.py sends.
EXAMPLE_RETURN_REQUEST: dict[str, Any] = {
    "order_ref": "113-4567890-1234567",
    "channel": "amazon_us",
    "ticket_id": "T-88213",
    "customer_message": "The kettle arrived with a cracked lid.",
    "reason": "damaged",
    "items": [{"sku": "KET-01", "quantity": 1}],
    "requested_resolution": "refund",
    "locale": "en-US",
    "customer_contacted_at": "2026-12-03T14:40:00Z",
    "as_of": "2026-12-03T15:00:00Z",
}


class ReturnRequest(BaseModel):
    """`POST /v1/returns/route`: what the helpdesk knows about the return."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [EXAMPLE_RETURN_REQUEST]},
    )

    order_ref: OrderRef = Field(
        description="The order: an Amazon order id (3-7-7 digits), a Shopify order name (`#1001` or "
        "`1001`), a Shopify numeric order id, or a Shopify Order GID. A bare number is looked up as "
        "an order name first, then as an order id. An unknown order is 404 `order_not_found`.",
        examples=["113-4567890-1234567", "#1001", "gid://shopify/Order/450789469"],
    )
    channel: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")] | None = Field(
        default=None,
        description="A configured channel: `amazon_us` and `shopify_ca` always exist, and any channel "
        "the service is configured with (`CHANNEL_<NAME>_...` settings, e.g. `amazon_ca`, "
        "`shopify_us`). Absent: found from `order_ref` and the configured channels. A name that is "
        "not configured is 422 `unknown_channel`; one that contradicts the order found, 409 "
        "`channel_mismatch`.",
        examples=["amazon_us"],
    )
    ticket_id: Annotated[str, StringConstraints(max_length=255)] | None = Field(
        default=None,
        description="The helpdesk's ticket id, stored with the decision and a filter of `GET /v1/decisions`.",
        examples=["T-88213"],
    )
    customer_message: Annotated[str, StringConstraints(max_length=20_000)] | None = Field(
        default=None,
        description="The customer's words, read for context only and never stored.",
        examples=["The kettle arrived with a cracked lid."],
    )
    reason: Reason = Field(
        default=Reason.other,
        description="Why the item comes back; its fault (seller's or customer's) drives the fee, "
        "return shipping and the windows (see `Reason`).",
        examples=["damaged"],
    )
    items: list[ReturnItem] | None = Field(
        default=None,
        max_length=500,
        description="The lines coming back, by SKU. Absent: every line of the order. The action "
        "bodies take the same list under the same name.",
        examples=[[{"sku": "KET-01", "quantity": 1}]],
    )
    requested_resolution: RequestedResolution = Field(
        default=RequestedResolution.unknown,
        description="What the customer asked for; recorded, and it does not change the options "
        "(see `RequestedResolution`).",
        examples=["refund"],
    )
    locale: Locale | None = Field(
        default=None,
        description="The reply's language, where the channel answers in it (Amazon US in `en-US` "
        "only; a shop in the languages its policy offers). Absent: the customer's checkout language, "
        "else the region's (`fr-CA` for a Shopify CA order shipped to Quebec), else the channel's default.",
        examples=["en-US"],
    )
    customer_contacted_at: RequestTime | None = Field(
        default=None,
        description="When the customer first wrote about this return (RFC 3339); default `as_of`. "
        "The response deadline (`queue.sla_due_at`) and Amazon's A-to-z risk run from it.",
        examples=["2026-12-03T14:40:00Z"],
    )
    as_of: RequestTime | None = Field(
        default=None,
        description="The moment the decision is made for (RFC 3339); default now. Windows and "
        "deadlines count from it, so a decision can be replayed.",
        examples=["2026-12-03T15:00:00Z"],
    )


# --- What the policy decides ---------------------------------------------------------


class ExplanationStep(BaseModel):
    rule: str
    result: str
    policy: str | None = Field(default=None, description="The policy id and version that holds the rule.")


class RestockingFee(BaseModel):
    allowed: bool
    max_percent: Percent
    amount: Money


class PolicyResult(BaseModel):
    id: str
    version: str
    owner: PolicyOwner
    eligible: bool
    return_window_ends: date | None
    restocking_fee: RestockingFee
    refund_trigger: RefundTrigger
    return_required: bool
    returned_value: Money
    store_credit_bonus_percent: Percent
    resolution_options: list[Resolution]
    must: list[str]
    must_not: list[str]
    review: bool = Field(default=False, description="The merchant policy asks for a review before acting.")
    return_shipping_paid_by: Literal["seller", "customer"] = "seller"


class Reply(BaseModel):
    id: str
    locale: Locale
    subject: str
    body: str


class QueueAssignment(BaseModel):
    name: str
    priority: int = Field(ge=1)
    sla_due_at: AwareDatetime
    skills: list[str]
    a_to_z_risk: bool


class OrderView(BaseModel):
    """The order as a decision shows it."""

    order_ref: str
    placed_at: AwareDatetime
    shipped_at: AwareDatetime | None
    delivered_at: AwareDatetime | None
    delivered_at_source: DeliverySource | None
    fulfillment: Fulfillment
    currency: str
    total: Money
    ship_to_region: str | None
    lines: list[LineView]


class LineView(BaseModel):
    sku: str | None
    title: str
    quantity: int
    unit_price: Money


class Decision(BaseModel):
    """The answer to `POST /v1/returns/route`, stored as it was given."""

    decision_id: str
    created_at: AwareDatetime
    as_of: AwareDatetime
    channel: str
    platform: Platform
    classification: Classification
    ticket_id: str | None
    reason: Reason
    fault: Fault
    requested_resolution: RequestedResolution
    order: OrderView
    policy: PolicyResult
    template: Reply
    queue: QueueAssignment
    sandbox: bool
    explanation: list[ExplanationStep]


OrderView.model_rebuild()
