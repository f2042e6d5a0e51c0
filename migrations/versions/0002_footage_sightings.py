"""footage: videos, sightings, crops, vectors, person links

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('videos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('camera', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('model_id', sa.String(length=100), nullable=False),
    sa.Column('settings', sa.String(length=64), nullable=False),
    sa.Column('recorded_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fps', sa.Double(), nullable=False),
    sa.Column('frame_count', sa.Integer(), nullable=False),
    sa.Column('frames_analysed', sa.Integer(), nullable=False),
    sa.Column('duration_s', sa.Double(), nullable=False),
    sa.Column('processing_s', sa.Double(), nullable=False),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_videos')),
    sa.UniqueConstraint('sha256', 'model_id', name=op.f('uq_videos_sha256_model_id'))
    )
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_videos_camera'), ['camera'], unique=False)
        batch_op.create_index(batch_op.f('ix_videos_recorded_start'), ['recorded_start'], unique=False)

    op.create_table('sightings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('video_id', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('start_frame', sa.Integer(), nullable=False),
    sa.Column('end_frame', sa.Integer(), nullable=False),
    sa.Column('detections', sa.Integer(), nullable=False),
    sa.Column('mean_vector', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['video_id'], ['videos.id'], name=op.f('fk_sightings_video_id_videos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sightings'))
    )
    with op.batch_alter_table('sightings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sightings_start_time'), ['start_time'], unique=False)
        batch_op.create_index(batch_op.f('ix_sightings_video_id'), ['video_id'], unique=False)

    op.create_table('sighting_crops',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sighting_id', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('frame', sa.Integer(), nullable=False),
    sa.Column('x', sa.Integer(), nullable=False),
    sa.Column('y', sa.Integer(), nullable=False),
    sa.Column('w', sa.Integer(), nullable=False),
    sa.Column('h', sa.Integer(), nullable=False),
    sa.Column('detection_score', sa.Double(), nullable=False),
    sa.Column('sharpness', sa.Double(), nullable=False),
    sa.Column('quality', sa.Double(), nullable=False),
    sa.Column('stored_path', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['sighting_id'], ['sightings.id'], name=op.f('fk_sighting_crops_sighting_id_sightings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sighting_crops'))
    )
    with op.batch_alter_table('sighting_crops', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sighting_crops_sighting_id'), ['sighting_id'], unique=False)

    op.create_table('sighting_matches',
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('sighting_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Double(), nullable=False),
    sa.Column('matched_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_sighting_matches_person_id_persons'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sighting_id'], ['sightings.id'], name=op.f('fk_sighting_matches_sighting_id_sightings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('person_id', 'sighting_id', name=op.f('pk_sighting_matches'))
    )
    with op.batch_alter_table('sighting_matches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sighting_matches_sighting_id'), ['sighting_id'], unique=False)

    op.create_table('sighting_vectors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sighting_id', sa.Integer(), nullable=False),
    sa.Column('frame', sa.Integer(), nullable=False),
    sa.Column('quality', sa.Double(), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['sighting_id'], ['sightings.id'], name=op.f('fk_sighting_vectors_sighting_id_sightings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sighting_vectors'))
    )
    with op.batch_alter_table('sighting_vectors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sighting_vectors_sighting_id'), ['sighting_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sighting_vectors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sighting_vectors_sighting_id'))

    op.drop_table('sighting_vectors')
    with op.batch_alter_table('sighting_matches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sighting_matches_sighting_id'))

    op.drop_table('sighting_matches')
    with op.batch_alter_table('sighting_crops', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sighting_crops_sighting_id'))

    op.drop_table('sighting_crops')
    with op.batch_alter_table('sightings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sightings_video_id'))
        batch_op.drop_index(batch_op.f('ix_sightings_start_time'))

    op.drop_table('sightings')
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_videos_recorded_start'))
        batch_op.drop_index(batch_op.f('ix_videos_camera'))

    op.drop_table('videos')
