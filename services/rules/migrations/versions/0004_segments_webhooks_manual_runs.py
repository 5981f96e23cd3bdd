"""segment plays (trigger kinds, memberships, attribute catalog), webhooks, manual run limits

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 23:20:00
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
        "account_attributes",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "rate_windows",
        sa.Column("caller", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("caller"),
    )
    op.create_table(
        "segment_members",
        sa.Column("play_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("play_id", "account_id"),
    )
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_segment_members_account_id"), ["account_id"], unique=False)
    with op.batch_alter_table("play_runs", schema=None) as batch_op:
        batch_op.create_index("ix_play_runs_event_id", ["event_id"], unique=False)
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attribute_times", sa.JSON(none_as_null=True), nullable=True))
    with op.batch_alter_table("plays", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trigger_kind", sa.String(length=20), server_default="EVENT", nullable=False))
        batch_op.add_column(sa.Column("activation", sa.String(length=20), server_default="NEW_ONLY", nullable=False))
        batch_op.add_column(sa.Column("webhook_secret", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("plays", schema=None) as batch_op:
        batch_op.drop_column("webhook_secret")
        batch_op.drop_column("activation")
        batch_op.drop_column("trigger_kind")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("attribute_times")
    with op.batch_alter_table("play_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_play_runs_event_id")
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_members_account_id"))
    op.drop_table("segment_members")
    op.drop_table("rate_windows")
    op.drop_table("account_attributes")
