"""Decisions, API keys and idempotency records.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("classification", sa.String(32), nullable=False),
        sa.Column("order_ref", sa.String(255), nullable=False),
        sa.Column("ticket_id", sa.String(255), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policy_id", sa.String(100), nullable=False),
        sa.Column("policy_version", sa.String(50), nullable=False),
        sa.Column("sandbox", sa.Boolean(), nullable=False),
        sa.Column("api_key_id", sa.String(32), sa.ForeignKey("api_keys.id"), nullable=True),
        sa.Column("answer", Document, nullable=False),
        sa.Column("order_snapshot", Document, nullable=False),
        sa.Column("request", Document, nullable=False),
    )
    op.create_index("ix_decisions_created_at_id", "decisions", ["created_at", "id"])
    op.create_index("ix_decisions_channel_created_at", "decisions", ["channel", "created_at"])
    op.create_index("ix_decisions_order_ref", "decisions", ["order_ref"])
    op.create_index("ix_decisions_ticket_id", "decisions", ["ticket_id"])
    op.create_table(
        "idempotency_records",
        sa.Column("api_key_id", sa.String(32), sa.ForeignKey("api_keys.id"), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", Document, nullable=True),
    )
    op.create_index("ix_idempotency_records_expires_at", "idempotency_records", ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotency_records")
    op.drop_table("decisions")
    op.drop_table("api_keys")
