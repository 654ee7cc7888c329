"""The Amazon order mirror: orders per seller account, where each account's sync stands, and the
ORDER_CHANGE notifications kept aside.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "amazon_mirror_orders",
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("order_snapshot", Document, nullable=True),
        sa.Column("created_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_updated_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("noted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("account", "order_id"),
    )
    op.create_index(
        "ix_amazon_mirror_orders_account_created_time", "amazon_mirror_orders", ["account", "created_time"]
    )
    op.create_table(
        "amazon_mirror_sync",
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("query_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pagination_token", sa.String(4096), nullable=True),
        sa.Column("pass_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("confirmed_through", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_page_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("lease_owner", sa.String(32), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("account"),
    )
    op.create_table(
        "amazon_notifications_kept",
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("queue", sa.String(1024), nullable=False),
        sa.Column("account", sa.String(64), nullable=True),
        sa.Column("order_id", sa.String(32), nullable=True),
        sa.Column("receive_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(2000), nullable=False),
        sa.Column("body", Document, nullable=True),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )


def downgrade() -> None:
    op.drop_table("amazon_notifications_kept")
    op.drop_table("amazon_mirror_sync")
    op.drop_index("ix_amazon_mirror_orders_account_created_time", table_name="amazon_mirror_orders")
    op.drop_table("amazon_mirror_orders")
