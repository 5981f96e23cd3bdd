"""accounts.next_time_check: the clock pass re-evaluates only accounts whose moment has come

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_time_check", sa.Float(), nullable=True))
        batch_op.create_index(batch_op.f("ix_accounts_next_time_check"), ["next_time_check"], unique=False)
    # Accounts stored before this revision have no schedule yet: the first pass after the upgrade
    # looks at each once (as every pass did before) and schedules it.
    op.execute("UPDATE accounts SET next_time_check = 0")


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_next_time_check"))
        batch_op.drop_column("next_time_check")
