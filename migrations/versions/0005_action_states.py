"""Action states checked by the database, from the same table the code moves them by.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

from app.action_state import ActionState, sql_in

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.create_check_constraint("ck_actions_status", sql_in(ActionState))


def downgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.drop_constraint("ck_actions_status", type_="check")
