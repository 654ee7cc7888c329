"""Outcomes: one per decision with the keys the stats group by; the rule sets of explanations;
Amazon's returns report lines; the imports of that report. Decisions made before are given theirs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db.outcome_facts import facts_of_stored
from app.db.tables import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UNRESOLVED = sa.text("status IS NULL OR status = 'open'")
UNMATCHED = sa.text("decision_id IS NULL")
RUNNING = sa.text("status = 'running'")
BACKFILL_PAGE = 1000


def upgrade() -> None:
    op.create_table(
        "rule_sets",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("rules", Document, nullable=False),
    )
    op.create_table(
        "outcomes",
        sa.Column("decision_id", sa.Uuid(), sa.ForeignKey("decisions.id"), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("order_id", sa.String(255), nullable=False),
        sa.Column("policy_id", sa.String(100), nullable=False),
        sa.Column("policy_version", sa.String(50), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("sla_met", sa.Boolean(), nullable=False),
        sa.Column("rule_set", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(24), nullable=True),
        sa.Column("refunded_amount", sa.Numeric(18, 4), nullable=True),
        sa.Column("retained_amount", sa.Numeric(18, 4), nullable=True),
        sa.Column("in_policy", sa.Boolean(), nullable=True),
        sa.Column("a_to_z_claim", sa.Boolean(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.String(16), nullable=True),
        sa.Column("detail", Document, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_outcomes_created_at", "outcomes", ["created_at"])
    op.create_index("ix_outcomes_order_id", "outcomes", ["order_id"])
    op.create_index(
        "ix_outcomes_unresolved",
        "outcomes",
        ["platform", "checked_at"],
        postgresql_where=UNRESOLVED,
        sqlite_where=UNRESOLVED,
    )
    op.create_table(
        "amazon_return_rows",
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(32), primary_key=True),
        sa.Column("sku", sa.String(255), primary_key=True),
        sa.Column("rma_id", sa.String(64), primary_key=True),
        sa.Column("decision_id", sa.Uuid(), sa.ForeignKey("decisions.id"), nullable=True),
        sa.Column("requested_on", sa.Date(), nullable=True),
        sa.Column("delivered_on", sa.Date(), nullable=True),
        sa.Column("request_status", sa.String(64), nullable=False),
        sa.Column("resolution", sa.String(64), nullable=True),
        sa.Column("return_type", sa.String(64), nullable=True),
        sa.Column("return_reason", sa.String(64), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("in_policy", sa.Boolean(), nullable=True),
        sa.Column("a_to_z_claim", sa.Boolean(), nullable=False),
        sa.Column("refunded_amount", sa.Numeric(18, 4), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("problem", sa.String(500), nullable=True),
        sa.Column("report", sa.String(255), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_amazon_return_rows_decision_id", "amazon_return_rows", ["decision_id"])
    op.create_index(
        "ix_amazon_return_rows_unmatched",
        "amazon_return_rows",
        ["channel", "order_id"],
        postgresql_where=UNMATCHED,
        sqlite_where=UNMATCHED,
    )
    op.create_table(
        "outcome_imports",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("report", sa.String(255), nullable=True),
        sa.Column("data_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("counts", Document, nullable=True),
        sa.Column("problems", Document, nullable=True),
        sa.Column("error", sa.String(2000), nullable=True),
    )
    op.create_index("ix_outcome_imports_channel_started_at", "outcome_imports", ["channel", "started_at"])
    op.create_index(
        "ux_outcome_imports_running",
        "outcome_imports",
        ["channel"],
        unique=True,
        postgresql_where=RUNNING,
        sqlite_where=RUNNING,
    )
    _backfill()


def _backfill() -> None:
    """Every decision already stored gets its outcome row (nothing known yet), a page at a time."""
    decisions = sa.table(
        "decisions",
        sa.column("id", sa.Uuid()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("answer", Document),
        sa.column("order_snapshot", Document),
    )
    types = {"decision_id": sa.Uuid(), "created_at": UTCDateTime(), "rule_set": sa.BigInteger()}
    outcomes = sa.table("outcomes", *(sa.column(name, types.get(name)) for name in _OUTCOME_COLUMNS))
    rule_sets = sa.table("rule_sets", sa.column("id", sa.BigInteger()), sa.column("rules", Document))
    connection = op.get_bind()
    known: set[int] = set()
    after = None
    while True:
        query = sa.select(decisions).order_by(decisions.c.created_at, decisions.c.id).limit(BACKFILL_PAGE)
        if after is not None:
            query = query.where(
                sa.or_(
                    decisions.c.created_at > after[0],
                    sa.and_(decisions.c.created_at == after[0], decisions.c.id > after[1]),
                )
            )
        page = connection.execute(query).all()
        if not page:
            return
        rows, sets = [], []
        for row in page:
            facts, rule_set = facts_of_stored(row.id, row.answer, row.order_snapshot)
            rows.append(facts)
            if rule_set.id not in known:
                known.add(rule_set.id)
                sets.append({"id": rule_set.id, "rules": {"rules": list(rule_set.rules)}})
        if sets:
            connection.execute(rule_sets.insert(), sets)
        connection.execute(outcomes.insert(), rows)
        after = (page[-1].created_at, page[-1].id)


_OUTCOME_COLUMNS = (
    "decision_id",
    "created_at",
    "channel",
    "platform",
    "order_id",
    "policy_id",
    "policy_version",
    "queue",
    "reason",
    "sla_met",
    "rule_set",
    "currency",
    "a_to_z_claim",
)


def downgrade() -> None:
    op.drop_table("outcome_imports")
    op.drop_table("amazon_return_rows")
    op.drop_table("outcomes")
    op.drop_table("rule_sets")
