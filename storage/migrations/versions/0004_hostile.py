"""hostile input: signed callbacks bound to their first message; a team robot's allow_private

Revision ID: 0004_hostile
Revises: 0003_welcome
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004_hostile'
down_revision = '0003_welcome'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signed_callbacks',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('signed_callbacks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signed_callbacks_expires_at'), ['expires_at'], unique=False)
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('webhook_allow_private', sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.drop_column('webhook_allow_private')
    with op.batch_alter_table('signed_callbacks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signed_callbacks_expires_at'))
    op.drop_table('signed_callbacks')
