"""enrolled crops: the box taken from each upload, its detector score, the original if kept

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('images') as batch:
        batch.add_column(sa.Column('box_x', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('box_y', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('box_w', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('box_h', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('detection_score', sa.Double(), nullable=True))
        batch.add_column(sa.Column('upload_width', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('upload_height', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('original_path', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('images') as batch:
        for column in ('original_path', 'upload_height', 'upload_width', 'detection_score',
                       'box_h', 'box_w', 'box_y', 'box_x'):
            batch.drop_column(column)
