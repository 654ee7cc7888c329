"""Shopify webhook inbox; decisions record the webhook that caused them; indexes for the dashboards.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# (name, columns): keyset pages newest first, alone or under one equality filter, and the stats'
# covering index.
DECISION_INDEXES = (
    ("ix_decisions_channel_created_at_id", ["channel", "created_at", "id"]),
    ("ix_decisions_queue_created_at_id", ["queue", "created_at", "id"]),
    ("ix_decisions_classification_created_at_id", ["classification", "created_at", "id"]),
    ("ix_decisions_api_key_id_created_at_id", ["api_key_id", "created_at", "id"]),
    (
        "ix_decisions_stats",
        ["created_at", "channel", "queue", "classification", "reason", "eligible", "sla_due_at"],
    ),
)


# The stats by UTC day group on this expression; its statistics tell the planner how few days there
# are, so it aggregates them in a hash instead of sorting every decision (PostgreSQL 14 or later).
UTC_DAY_STATISTICS = (
    "CREATE STATISTICS st_decisions_utc_day ON (CAST(timezone('UTC', created_at) AS date)) FROM decisions"
)


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("shop_domain", sa.String(255), nullable=True),
        sa.Column("api_version", sa.String(32), nullable=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", Document, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim_token", sa.String(32), nullable=True),
        sa.Column("last_error", sa.String(2000), nullable=True),
        sa.Column("outcome", sa.String(255), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_webhook_events_status_next_attempt_at", "webhook_events", ["status", "next_attempt_at"]
    )
    op.create_index("ix_webhook_events_subject_occurred_at", "webhook_events", ["subject", "occurred_at"])
    op.create_index("ix_webhook_events_status_received_at", "webhook_events", ["status", "received_at"])

    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("webhook_event_id", sa.String(255), nullable=True))
        batch.create_foreign_key(
            "fk_decisions_webhook_event_id", "webhook_events", ["webhook_event_id"], ["id"]
        )
    op.create_index("ux_decisions_webhook_event_id", "decisions", ["webhook_event_id"], unique=True)
    op.drop_index("ix_decisions_channel_created_at", table_name="decisions")
    for name, columns in DECISION_INDEXES:
        op.create_index(name, "decisions", columns)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(UTC_DAY_STATISTICS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_decisions_utc_day")
    for name, _columns in reversed(DECISION_INDEXES):
        op.drop_index(name, table_name="decisions")
    op.create_index("ix_decisions_channel_created_at", "decisions", ["channel", "created_at"])
    op.drop_index("ux_decisions_webhook_event_id", table_name="decisions")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_constraint("fk_decisions_webhook_event_id", type_="foreignkey")
        batch.drop_column("webhook_event_id")
    op.drop_table("webhook_events")
