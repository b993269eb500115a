"""after-sales cases

Revision ID: 0002_cs
Revises: 0001
Create Date: 2026-12-05 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_cs"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aftersale_cases",
        sa.Column("shop", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("opened", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("shop", "case_id"),
    )
    with op.batch_alter_table("aftersale_cases", schema=None) as batch_op:
        batch_op.create_index("ix_aftersale_cases_opened", ["opened"], unique=False)
        batch_op.create_index("ix_aftersale_cases_closed", ["closed"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("aftersale_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_aftersale_cases_closed")
        batch_op.drop_index("ix_aftersale_cases_opened")
    op.drop_table("aftersale_cases")
