"""directory: people taken from the platform's contacts, and the last pull of each bot's directory

Revision ID: 0013_directory
Revises: 0012_webhooks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_directory"
down_revision = "0012_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        # None: from a team file; "directory" or "console": added in the console (apply keeps them)
        batch_op.add_column(sa.Column("added_from", sa.String(length=16), nullable=True))
    op.create_table(
        "directory_members",
        sa.Column("bot_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("union_id", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bot_id", "external_id"),
    )


def downgrade() -> None:
    op.drop_table("directory_members")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("added_from")
