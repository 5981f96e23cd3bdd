"""play_runs.account_slot: runs are partitioned by account over the replicas (slot % P)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 22:00:00
"""

import zlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("play_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_slot", sa.Integer(), nullable=False, server_default="0"))
    # Only the queue reads the slot, so only pending runs need theirs (finished ones keep 0); the
    # hash is services/runtime/partitions.account_slot, frozen here as migrations must be.
    bind = op.get_bind()
    accounts = bind.execute(sa.text("SELECT DISTINCT account_id FROM play_runs WHERE outcome = 'PENDING'")).scalars()
    slots = [{"account": a, "slot": zlib.crc32(a.encode()) % (1 << 16)} for a in accounts]
    if slots:
        bind.execute(
            sa.text("UPDATE play_runs SET account_slot = :slot WHERE account_id = :account AND outcome = 'PENDING'"),
            slots,
        )


def downgrade() -> None:
    with op.batch_alter_table("play_runs", schema=None) as batch_op:
        batch_op.drop_column("account_slot")
