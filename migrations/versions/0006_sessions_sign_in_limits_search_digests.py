"""session generations, sign-in failures, search digests apart from the audit log

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))

    op.create_table('search_queries',
    sa.Column('audit_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['audit_id'], ['audit_log.id'], name=op.f('fk_search_queries_audit_id_audit_log')),
    sa.PrimaryKeyConstraint('audit_id', name=op.f('pk_search_queries'))
    )
    with op.batch_alter_table('search_queries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_search_queries_sha256'), ['sha256'], unique=False)

    op.create_table('sign_in_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=False),
    sa.Column('username_sha256', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_failures')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('sign_in_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_failures_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sign_in_failures_remote_addr'), ['remote_addr'], unique=False)
        batch_op.create_index(batch_op.f('ix_sign_in_failures_username_sha256'), ['username_sha256'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sign_in_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_failures_username_sha256'))
        batch_op.drop_index(batch_op.f('ix_sign_in_failures_remote_addr'))
        batch_op.drop_index(batch_op.f('ix_sign_in_failures_at'))
    op.drop_table('sign_in_failures')
    with op.batch_alter_table('search_queries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_search_queries_sha256'))
    op.drop_table('search_queries')
    # SQLite >= 3.35 drops the column in place: recreating the table would lose its AUTOINCREMENT.
    with op.batch_alter_table('users', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('session_generation')
