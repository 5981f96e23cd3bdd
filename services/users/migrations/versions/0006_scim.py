"""SCIM: what identity providers keep about users and teams

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scim_users",
        sa.Column("user_id", sa.String(length=36), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("user_name", sa.String(length=254), nullable=False),
        sa.Column("user_name_key", sa.String(length=254), nullable=False, unique=True),
        sa.Column("external_id", sa.String(length=254), nullable=True),
        sa.Column("license_managed", sa.Boolean(), nullable=False),
        sa.Column("email_labels", sa.JSON(), nullable=False),
    )
    op.create_index("ix_scim_users_external_id", "scim_users", ["external_id"])
    op.create_table(
        "scim_groups",
        sa.Column("team_id", sa.String(length=36), sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("external_id", sa.String(length=254), nullable=True),
    )
    op.create_index("ix_scim_groups_external_id", "scim_groups", ["external_id"])


def downgrade() -> None:
    op.drop_index("ix_scim_groups_external_id", "scim_groups")
    op.drop_table("scim_groups")
    op.drop_index("ix_scim_users_external_id", "scim_users")
    op.drop_table("scim_users")
