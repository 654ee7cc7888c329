"""The tables. Decisions are append-only; no buyer PII is stored in any of them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    TypeDecorator,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.action_state import STATES_HOLDING_DECISION, ActionState, sql_in
from app.domain import ActionError, ActionPlan, Money


def as_utc(moment: datetime) -> datetime:
    """The same moment in UTC; a naive datetime is a bug (whose clock would it be?)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StateColumn(TypeDecorator[ActionState]):
    """An action's state: its value in the database, the enum member in Python."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: ActionState | str | None, dialect: Dialect) -> str | None:
        return None if value is None else ActionState(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> ActionState | None:
        return None if value is None else ActionState(value)


Document = JSON().with_variant(JSONB(), "postgresql")
# A document that may be absent: None is SQL NULL (not JSON `null`), so `IS NULL` finds it.
OptionalDocument = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class ModelDocument(TypeDecorator[Any]):
    """A JSON document read back as the pydantic model it was written from."""

    impl = Document
    cache_ok = True

    def __init__(self, model: type[BaseModel]) -> None:
        super().__init__()
        self.model = model

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return value.model_dump(mode="json", exclude_unset=True) if isinstance(value, BaseModel) else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else self.model.model_validate(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: Document}


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(String(200), doc="space-separated")
    secret_hash: Mapped[str] = mapped_column(String(64), doc="SHA-256 of the secret, hex")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Decision(Base):
    __tablename__ = "decisions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_at: Mapped[datetime]
    as_of: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16))
    classification: Mapped[str] = mapped_column(String(32))
    order_ref: Mapped[str] = mapped_column(String(255))
    ticket_id: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(32))
    queue: Mapped[str] = mapped_column(String(64))
    eligible: Mapped[bool] = mapped_column(Boolean)
    sla_due_at: Mapped[datetime]
    policy_id: Mapped[str] = mapped_column(String(100))
    policy_version: Mapped[str] = mapped_column(String(50))
    sandbox: Mapped[bool] = mapped_column(Boolean)
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), doc="who asked for it")
    webhook_event_id: Mapped[str | None] = mapped_column(
        ForeignKey("webhook_events.id"), doc="the Shopify webhook that caused it, when no API key did"
    )
    answer: Mapped[dict[str, Any]] = mapped_column(doc="the full answer, as given")
    order_snapshot: Mapped[dict[str, Any]] = mapped_column(doc="the normalised order it was decided on")
    request: Mapped[dict[str, Any]] = mapped_column(doc="the request, without the customer's message")

    # The dashboards' list pages newest first over (created_at, id), with or without one equality
    # filter; the stats read the covering index alone (an index-only scan on PostgreSQL).
    __table_args__ = (
        Index("ix_decisions_created_at_id", "created_at", "id"),
        Index("ix_decisions_channel_created_at_id", "channel", "created_at", "id"),
        Index("ix_decisions_queue_created_at_id", "queue", "created_at", "id"),
        Index("ix_decisions_classification_created_at_id", "classification", "created_at", "id"),
        Index("ix_decisions_api_key_id_created_at_id", "api_key_id", "created_at", "id"),
        Index(
            "ix_decisions_stats",
            "created_at",
            "channel",
            "queue",
            "classification",
            "reason",
            "eligible",
            "sla_due_at",
        ),
        Index("ix_decisions_order_ref", "order_ref"),
        Index("ix_decisions_ticket_id", "ticket_id"),
        Index("ux_decisions_webhook_event_id", "webhook_event_id", unique=True),
    )


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), doc="SHA-256 of method, path and canonical body")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(doc="set while the first request runs")
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None]

    __table_args__ = (Index("ix_idempotency_records_expires_at", "expires_at"),)


class WebhookEvent(Base):
    """A Shopify webhook as received: the inbox the worker processes, keyed by X-Shopify-Webhook-Id.

    `next_attempt_at` is when a pending event is due, and for an event being processed, when its
    claim lapses (a worker that died mid-event leaves it to be claimed again then).
    """

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True, doc="X-Shopify-Webhook-Id")
    channel: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(100))
    shop_domain: Mapped[str | None] = mapped_column(String(255))
    api_version: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(255), doc="the resource's GID, e.g. the Return")
    triggered_at: Mapped[datetime | None] = mapped_column(doc="X-Shopify-Triggered-At")
    occurred_at: Mapped[datetime] = mapped_column(doc="when the change happened: the ordering key")
    received_at: Mapped[datetime]
    payload: Mapped[dict[str, Any] | None] = mapped_column(doc="handled topics only, without buyer notes")
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    claim_token: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(String(2000))
    outcome: Mapped[str | None] = mapped_column(String(255))
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_webhook_events_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_events_subject_occurred_at", "subject", "occurred_at"),
        Index("ix_webhook_events_status_received_at", "status", "received_at"),
    )


# An action holds its decision while it may still move money, or has: one at a time per decision.
_HOLDS_DECISION = text(sql_in(STATES_HOLDING_DECISION))


class Action(Base):
    """A Shopify action on a decision; recorded and committed before anything is sent."""

    __tablename__ = "actions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    decision_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("decisions.id"))
    kind: Mapped[str] = mapped_column(String(16), doc="refund, exchange, store_credit")
    status: Mapped[ActionState] = mapped_column(StateColumn, doc="see app.action_state")
    channel: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(255), doc="the Shopify Order GID")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None] = mapped_column(doc="when the first mutation went out")
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), doc="the request's, to resume it")
    plan: Mapped[ActionPlan] = mapped_column(ModelDocument(ActionPlan), doc="what is to be sent")
    amount: Mapped[Money | None] = mapped_column(ModelDocument(Money), doc="the money moved (or to move)")
    shopify: Mapped[dict[str, Any]] = mapped_column(doc="ids of what Shopify created")
    error: Mapped[ActionError | None] = mapped_column(ModelDocument(ActionError))

    __table_args__ = (
        Index("ix_actions_decision_id", "decision_id"),
        Index(
            "uq_actions_active_per_decision",
            "decision_id",
            unique=True,
            postgresql_where=_HOLDS_DECISION,
            sqlite_where=_HOLDS_DECISION,
        ),
        Index("ix_actions_status_updated_at", "status", "updated_at"),
        CheckConstraint(sql_in(ActionState), name="ck_actions_status"),
    )


class ShopifyRefund(Base):
    """Every refund the service knows on a Shopify order: its own, and those made elsewhere."""

    __tablename__ = "shopify_refunds"

    refund_id: Mapped[str] = mapped_column(String(255), primary_key=True, doc="the Refund GID")
    channel: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(255))
    action_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("actions.id"))
    amount: Mapped[Money] = mapped_column(ModelDocument(Money))
    created_at: Mapped[datetime] = mapped_column(doc="when Shopify made it")
    recorded_at: Mapped[datetime]
    lines: Mapped[list[Any] | None] = mapped_column(
        OptionalDocument, doc='what it settled: [{"line_id": LineItem GID, "quantity": n}]; null if not known'
    )

    __table_args__ = (Index("ix_shopify_refunds_order_id", "order_id"),)


class SettledUnit(Base):
    """One unit of an order line that money moved for, held by the action or the refund that moved it.

    A unit is refunded, credited or exchanged once: two actions claiming the same unit insert the same
    key, and the database keeps one. A failed action's units are deleted, freeing them.
    """

    __tablename__ = "settled_units"

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(255), primary_key=True, doc="the Shopify Order GID")
    line_id: Mapped[str] = mapped_column(String(255), primary_key=True, doc="the LineItem GID")
    unit: Mapped[int] = mapped_column(Integer, primary_key=True, doc="1, 2, ... within the line")
    action_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("actions.id"))
    refund_id: Mapped[str | None] = mapped_column(ForeignKey("shopify_refunds.refund_id"))
    settled_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("(action_id IS NULL) <> (refund_id IS NULL)", name="ck_settled_units_one_holder"),
        Index("ix_settled_units_action_id", "action_id"),
        Index("ix_settled_units_refund_id", "refund_id"),
    )


class ShopifyReturn(Base):
    """The latest status Shopify announced for a Return, by webhook; newer events only replace it."""

    __tablename__ = "shopify_returns"

    return_id: Mapped[str] = mapped_column(String(255), primary_key=True, doc="the Return GID")
    channel: Mapped[str] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(16), doc="requested, open, declined, canceled, closed")
    last_topic: Mapped[str] = mapped_column(String(100), doc="the latest event, e.g. returns/process")
    changed_at: Mapped[datetime] = mapped_column(doc="when that event happened")
    webhook_event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id"), doc="the event")


# --- Outcomes: what happened after each decision --------------------------------------------------

# An outcome still to be learnt: the Shopify read-back looks among these.
_UNRESOLVED = text("status IS NULL OR status = 'open'")


class Outcome(Base):
    """What happened after one decision, with the decision's keys the stats group by.

    Written with the decision (status null: nothing known yet), then settled from what the service
    sees: its actions, Shopify's refunds and returns, Amazon's returns report. The grouping keys are
    copied from the decision so the stats read this narrow table alone.
    """

    __tablename__ = "outcomes"

    decision_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("decisions.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(doc="the decision's")
    channel: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[str] = mapped_column(String(255), doc="the channel's own: Amazon order id, Order GID")
    policy_id: Mapped[str] = mapped_column(String(100))
    policy_version: Mapped[str] = mapped_column(String(50))
    queue: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    sla_met: Mapped[bool] = mapped_column(Boolean, doc="decided before its response deadline")
    rule_set: Mapped[int] = mapped_column(BigInteger, doc="the rules of its explanation (rule_sets.id)")
    currency: Mapped[str] = mapped_column(String(3), doc="of the amounts below")
    status: Mapped[str | None] = mapped_column(String(24), doc="null until something is known")
    refunded_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    retained_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    in_policy: Mapped[bool | None] = mapped_column(Boolean)
    a_to_z_claim: Mapped[bool] = mapped_column(Boolean)
    resolved_at: Mapped[datetime | None]
    source: Mapped[str | None] = mapped_column(String(16), doc="shopify or amazon_report")
    detail: Mapped[dict[str, Any] | None] = mapped_column(doc="what the status was settled from")
    updated_at: Mapped[datetime | None]
    checked_at: Mapped[datetime | None] = mapped_column(doc="the last read-back from Shopify")

    __table_args__ = (
        Index("ix_outcomes_created_at", "created_at"),
        Index("ix_outcomes_order_id", "order_id"),
        Index(
            "ix_outcomes_unresolved",
            "platform",
            "checked_at",
            postgresql_where=_UNRESOLVED,
            sqlite_where=_UNRESOLVED,
        ),
    )


class RuleSet(Base):
    """The rules a decision's explanation names, once per distinct set: outcomes refer to it by id."""

    __tablename__ = "rule_sets"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    rules: Mapped[dict[str, Any]] = mapped_column(doc='{"rules": [...]}, sorted')


_UNMATCHED = text("decision_id IS NULL")


class AmazonReturnRow(Base):
    """One line of Amazon's returns report, as last imported: matched to a decision, or kept unmatched."""

    __tablename__ = "amazon_return_rows"

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sku: Mapped[str] = mapped_column(String(255), primary_key=True)
    rma_id: Mapped[str] = mapped_column(String(64), primary_key=True, doc="Amazon RMA ID; '' if none")
    decision_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("decisions.id"))
    requested_on: Mapped[date | None] = mapped_column(Date)
    delivered_on: Mapped[date | None] = mapped_column(Date)
    request_status: Mapped[str] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(String(64))
    return_type: Mapped[str | None] = mapped_column(String(64))
    return_reason: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int | None] = mapped_column(Integer)
    in_policy: Mapped[bool | None] = mapped_column(Boolean)
    a_to_z_claim: Mapped[bool] = mapped_column(Boolean)
    refunded_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    outcome: Mapped[str] = mapped_column(String(24), doc="the outcome this line says")
    problem: Mapped[str | None] = mapped_column(String(500), doc="why it is not matched")
    report: Mapped[str] = mapped_column(String(255), doc="the report id or file it came from")
    imported_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_amazon_return_rows_decision_id", "decision_id"),
        Index(
            "ix_amazon_return_rows_unmatched",
            "channel",
            "order_id",
            postgresql_where=_UNMATCHED,
            sqlite_where=_UNMATCHED,
        ),
    )


_RUNNING = text("status = 'running'")


class OutcomeImport(Base):
    """One import of Amazon's returns report: by hand from a file, or fetched by the worker."""

    __tablename__ = "outcome_imports"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), doc="file or reports_api")
    report: Mapped[str | None] = mapped_column(String(255), doc="the report id or file name")
    data_start: Mapped[datetime | None]
    data_end: Mapped[datetime | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), doc="running, succeeded or failed")
    counts: Mapped[dict[str, Any] | None] = mapped_column(doc="rows, matched, unmatched, invalid")
    problems: Mapped[dict[str, Any] | None] = mapped_column(doc='{"problems": [...]}: what was odd')
    error: Mapped[str | None] = mapped_column(String(2000))

    __table_args__ = (
        Index("ix_outcome_imports_channel_started_at", "channel", "started_at"),
        # One import at a time per channel, whichever worker runs it.
        Index(
            "ux_outcome_imports_running",
            "channel",
            unique=True,
            postgresql_where=_RUNNING,
            sqlite_where=_RUNNING,
        ),
    )


class MirroredOrder(Base):
    """An Amazon order as the order mirror holds it, per seller account: the normalised order, and the
    versions that say whether it is current.

    A row may hold no order yet: an ORDER_CHANGE notification about an order the mirror does not hold
    records when it changed, so that an older copy arriving later is not taken for a current one.
    """

    __tablename__ = "amazon_mirror_orders"

    account: Mapped[str] = mapped_column(String(64), primary_key=True, doc="the seller account's name")
    order_id: Mapped[str] = mapped_column(String(32), primary_key=True, doc="the Amazon order id")
    channel: Mapped[str | None] = mapped_column(String(64), doc="the channel the order was normalised for")
    order_snapshot: Mapped[dict[str, Any] | None] = mapped_column(doc="the normalised order (no buyer PII)")
    created_time: Mapped[datetime | None] = mapped_column(doc="Amazon's createdTime: the window's key")
    last_updated_time: Mapped[datetime | None] = mapped_column(doc="Amazon's lastUpdatedTime of the order")
    fetched_at: Mapped[datetime | None] = mapped_column(doc="when the order was asked of Amazon")
    changed_at: Mapped[datetime | None] = mapped_column(doc="the latest change an ORDER_CHANGE announced")
    noted_at: Mapped[datetime | None] = mapped_column(doc="when that notification was read")
    stale: Mapped[bool] = mapped_column(Boolean, doc="a change newer than the order held is known")

    __table_args__ = (Index("ix_amazon_mirror_orders_account_created_time", "account", "created_time"),)


class MirrorSync(Base):
    """Where the mirror of one seller account stands: the pass under way (its query and page token,
    committed with each page so a restart resumes there) and what the last finished pass confirmed."""

    __tablename__ = "amazon_mirror_sync"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    phase: Mapped[str] = mapped_column(String(16), doc="backfill, then incremental")
    query_from: Mapped[datetime] = mapped_column(doc="createdAfter or lastUpdatedAfter of the pass")
    pagination_token: Mapped[str | None] = mapped_column(String(4096), doc="the next page of the pass")
    pass_started_at: Mapped[datetime] = mapped_column(doc="when the pass under way began")
    pages: Mapped[int] = mapped_column(Integer, doc="pages read in all")
    confirmed_through: Mapped[datetime | None] = mapped_column(doc="Amazon's cutoff of the last pass")
    last_sync_at: Mapped[datetime | None] = mapped_column(doc="when the last pass finished")
    last_page_at: Mapped[datetime | None] = mapped_column(doc="when the last page was read")
    last_error: Mapped[str | None] = mapped_column(String(500))
    lease_owner: Mapped[str | None] = mapped_column(String(32), doc="the worker syncing it now")
    lease_until: Mapped[datetime | None]


class KeptNotification(Base):
    """An ORDER_CHANGE message that failed too many times, kept aside for an operator (its payload
    without the postal code), after which it is deleted from the queue."""

    __tablename__ = "amazon_notifications_kept"

    message_id: Mapped[str] = mapped_column(String(128), primary_key=True, doc="the SQS MessageId")
    queue: Mapped[str] = mapped_column(String(1024))
    account: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(32))
    receive_count: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(String(2000))
    body: Mapped[dict[str, Any] | None] = mapped_column(doc="the notification, buyer data left out")
    kept_at: Mapped[datetime]
