"""relay: shared rate-limit windows, multi-part progress and in-flight mark on the outbox row

Revision ID: 0006_relay
Revises: 0005_numbers
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_relay"
down_revision = "0005_numbers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_windows",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window_ms", sa.Integer(), nullable=False),
        sa.Column("spent", sa.JSON(), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_ms"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parts_sent", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("sending_at")
        batch_op.drop_column("parts_sent")
    op.drop_table("rate_windows")
