"""jobs name their connector and carry its settings (expand)

Expand/contract over two releases, so that a rolling update never has a replica read a row it
cannot understand:
  expand (this one)  adds jobs.connector and jobs.settings and copies every ETM job's settings
                     across. The code reads the new columns and, for ETM jobs, still writes
                     jobs.etm and type ETM_ACCOUNT_ASSIGNMENT, which replicas of the release
                     before read.
  contract (next)    once no replica of the release before runs: drops jobs.etm, and stops
                     writing it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("connector", sa.String(length=60), nullable=False, server_default=""))
        batch.add_column(sa.Column("settings", sa.JSON(), nullable=True))
    op.execute("UPDATE jobs SET connector = 'salesforce-etm', settings = etm WHERE etm IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("settings")
        batch.drop_column("connector")
