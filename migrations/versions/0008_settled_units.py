"""Settled units: each unit of a Shopify order line is refunded, credited or exchanged once.

A refund now records what it covered (`shopify_refunds.lines`), and `settled_units` holds one row
per unit settled, by the action or the refund that settled it. Filled from what is known already:
the lines of every action that may have moved money, and the lines of the refunds whose
`refunds/create` webhook is still stored; a refund made outside the service whose lines are not
found stays with `lines` null, and blocks every action on its order until a read-back learns them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.action_state import STATES_HOLDING_DECISION

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINES = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("shopify_refunds") as batch:
        batch.add_column(sa.Column("lines", LINES, nullable=True))
    op.create_table(
        "settled_units",
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(255), primary_key=True),
        sa.Column("line_id", sa.String(255), primary_key=True),
        sa.Column("unit", sa.Integer, primary_key=True),
        sa.Column("action_id", sa.Uuid, sa.ForeignKey("actions.id"), nullable=True),
        sa.Column("refund_id", sa.String(255), sa.ForeignKey("shopify_refunds.refund_id"), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("(action_id IS NULL) <> (refund_id IS NULL)", name="ck_settled_units_one_holder"),
    )
    op.create_index("ix_settled_units_action_id", "settled_units", ["action_id"])
    op.create_index("ix_settled_units_refund_id", "settled_units", ["refund_id"])
    _fill()


def downgrade() -> None:
    op.drop_index("ix_settled_units_refund_id", table_name="settled_units")
    op.drop_index("ix_settled_units_action_id", table_name="settled_units")
    op.drop_table("settled_units")
    with op.batch_alter_table("shopify_refunds") as batch:
        batch.drop_column("lines")


actions = sa.table(
    "actions",
    sa.column("id", sa.Uuid),
    sa.column("channel", sa.String),
    sa.column("order_id", sa.String),
    sa.column("status", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("plan", DOCUMENT),
)
refunds = sa.table(
    "shopify_refunds",
    sa.column("refund_id", sa.String),
    sa.column("channel", sa.String),
    sa.column("order_id", sa.String),
    sa.column("action_id", sa.Uuid),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("lines", LINES),
)
events = sa.table(
    "webhook_events",
    sa.column("topic", sa.String),
    sa.column("subject", sa.String),
    sa.column("payload", DOCUMENT),
)
units = sa.table(
    "settled_units",
    sa.column("channel", sa.String),
    sa.column("order_id", sa.String),
    sa.column("line_id", sa.String),
    sa.column("unit", sa.Integer),
    sa.column("action_id", sa.Uuid),
    sa.column("refund_id", sa.String),
    sa.column("settled_at", sa.DateTime(timezone=True)),
)


def _fill() -> None:
    """Units for what already moved money, oldest first, numbered on from each line's last unit."""
    bind = op.get_bind()
    now = datetime.now(UTC)
    numbered: defaultdict[tuple[str, str, str], int] = defaultdict(int)
    rows: list[dict[str, Any]] = []

    def settle(channel: str, order_id: str, lines: Any, **holder: Any) -> None:
        for line_id, quantity in lines:
            for _ in range(int(quantity)):
                numbered[(channel, order_id, line_id)] += 1
                unit = numbered[(channel, order_id, line_id)]
                rows.append(
                    dict(
                        channel=channel,
                        order_id=order_id,
                        line_id=line_id,
                        unit=unit,
                        settled_at=now,
                        **holder,
                    )
                )

    holding = [state.value for state in STATES_HOLDING_DECISION]
    held = bind.execute(
        sa.select(actions.c.id, actions.c.channel, actions.c.order_id, actions.c.plan)
        .where(actions.c.status.in_(holding))
        .order_by(actions.c.created_at, actions.c.id)
    )
    for action_id, channel, order_id, plan in held:
        settle(channel, order_id, (plan or {}).get("lines") or [], action_id=action_id, refund_id=None)

    payloads = {
        subject: payload
        for subject, payload in bind.execute(
            sa.select(events.c.subject, events.c.payload).where(events.c.topic == "refunds/create")
        )
        if subject
    }
    known = bind.execute(
        sa.select(refunds.c.refund_id, refunds.c.channel, refunds.c.order_id, refunds.c.action_id).order_by(
            refunds.c.created_at, refunds.c.refund_id
        )
    )
    for refund_id, channel, order_id, action_id in known:
        lines = _payload_lines(payloads.get(refund_id))
        if lines is None:
            continue
        bind.execute(
            refunds.update()
            .where(refunds.c.refund_id == refund_id)
            .values(lines=[{"line_id": line_id, "quantity": quantity} for line_id, quantity in lines])
        )
        if action_id is None:  # an action's refund: the action holds its units already
            settle(channel, order_id, lines, action_id=None, refund_id=refund_id)
    if rows:
        bind.execute(units.insert(), rows)


def _payload_lines(payload: Any) -> list[tuple[str, int]] | None:
    """(LineItem GID, units) from a stored `refunds/create` payload, or None when it does not say."""
    if not isinstance(payload, dict) or not isinstance(payload.get("refund_line_items"), list):
        return None
    lines = []
    for item in payload["refund_line_items"]:
        if not isinstance(item, dict):
            return None
        line_item, quantity = item.get("line_item_id"), item.get("quantity")
        if not isinstance(line_item, int) or not isinstance(quantity, int):
            return None
        if quantity > 0:
            lines.append((f"gid://shopify/LineItem/{line_item}", quantity))
    return lines
