"""issue 16: appraisal status and rules in force, template versions, leaves with a start

Revision ID: 0005_numbers
Revises: 0004_hostile
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_numbers"
down_revision = "0004_hostile"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("appraisals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="published", nullable=False)
        )
        batch_op.add_column(sa.Column("rules", sa.JSON(), nullable=True))
    op.create_table(
        "template_versions",
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("template_id", "version"),
    )
    op.create_table(
        "leaves",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("leaves", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leaves_person_id"), ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("leaves", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leaves_person_id"))
    op.drop_table("leaves")
    op.drop_table("template_versions")
    with op.batch_alter_table("appraisals", schema=None) as batch_op:
        batch_op.drop_column("rules")
        batch_op.drop_column("status")
