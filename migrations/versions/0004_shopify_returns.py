"""The latest status of each Shopify Return, as its webhooks announced it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shopify_returns",
        sa.Column("return_id", sa.String(255), primary_key=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("last_topic", sa.String(100), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("webhook_event_id", sa.String(255), sa.ForeignKey("webhook_events.id"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("shopify_returns")
