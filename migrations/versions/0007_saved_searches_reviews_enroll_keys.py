"""saved searches, sighting reviews, enrollment idempotency keys

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('persons', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('enroll_key', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_persons_enroll_key'), ['enroll_key'], unique=True)

    op.create_table('saved_searches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('stored_path', sa.String(length=300), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('detector_id', sa.String(length=100), nullable=False),
    sa.Column('model_id', sa.String(length=100), nullable=False),
    sa.Column('dim', sa.Integer(), nullable=False),
    sa.Column('detected', sa.Integer(), nullable=False),
    sa.Column('boxes', sa.Text(), nullable=False),
    sa.Column('vectors', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_searches')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('saved_searches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_saved_searches_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_saved_searches_sha256'), ['sha256'], unique=False)

    op.create_table('sighting_reviews',
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('sighting_id', sa.Integer(), nullable=False),
    sa.Column('confirmed', sa.Boolean(), nullable=False),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_sighting_reviews_person_id_persons'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sighting_id'], ['sightings.id'],
                            name=op.f('fk_sighting_reviews_sighting_id_sightings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('person_id', 'sighting_id', name=op.f('pk_sighting_reviews'))
    )
    with op.batch_alter_table('sighting_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sighting_reviews_sighting_id'), ['sighting_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sighting_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sighting_reviews_sighting_id'))
    op.drop_table('sighting_reviews')
    with op.batch_alter_table('saved_searches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_saved_searches_sha256'))
        batch_op.drop_index(batch_op.f('ix_saved_searches_created_at'))
    op.drop_table('saved_searches')
    # SQLite >= 3.35 drops the column in place: recreating the table would lose its AUTOINCREMENT.
    with op.batch_alter_table('persons', schema=None, recreate='never') as batch_op:
        batch_op.drop_index(batch_op.f('ix_persons_enroll_key'))
        batch_op.drop_column('enroll_key')
