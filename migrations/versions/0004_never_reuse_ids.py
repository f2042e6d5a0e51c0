"""never reuse ids: AUTOINCREMENT primary keys on SQLite

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# The tables keyed by a surrogate integer id. PostgreSQL's sequences never reuse an id; SQLite
# reuses the highest one after its row is deleted unless the table is declared AUTOINCREMENT.
TABLES = ('persons', 'images', 'embeddings', 'videos', 'sightings', 'sighting_crops',
          'sighting_vectors', 'api_keys', 'users', 'audit_log')


def upgrade() -> None:
    if op.get_context().dialect.name == 'sqlite':
        _recreate_sqlite_tables(autoincrement=True)


def downgrade() -> None:
    if op.get_context().dialect.name == 'sqlite':
        _recreate_sqlite_tables(autoincrement=False)


def _recreate_sqlite_tables(autoincrement: bool) -> None:
    """Copy every table into a new one declared with or without AUTOINCREMENT.

    Rows, ids, indexes, constraints and foreign keys are copied by batch mode; the table's
    triggers (audit_log's append-only guard) by replaying their stored SQL. Foreign keys must be
    off (env.py turns them off): with them on, dropping a parent table deletes its children.

    Raises:
        RuntimeError: offline (--sql) mode, foreign keys enforced, or a reference left dangling.
    """
    if op.get_context().as_sql:
        raise RuntimeError('recreating the SQLite tables reads their live schema: run this '
                           'migration on the database, not with --sql')
    bind = op.get_bind()
    if bind.exec_driver_sql('PRAGMA foreign_keys').scalar():
        raise RuntimeError('SQLite foreign keys are on: recreating the tables would delete child '
                           'rows; run the migration through migrations/env.py')
    # The driver opens a transaction only before DML, so the first CREATE TABLE would commit on
    # its own; open it now, so a failure leaves the database as it was.
    driver = bind.connection.driver_connection
    assert driver is not None, 'the connection is open, so its driver connection exists'
    if not driver.in_transaction:
        driver.execute('BEGIN')
    for table in TABLES:
        triggers = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                                        "AND tbl_name = :table ORDER BY name"),
                                {'table': table}).scalars().all()
        with op.batch_alter_table(table, recreate='always',
                                  table_kwargs={'sqlite_autoincrement': autoincrement}) as batch_op:
            # Named again for the downgrade; an AUTOINCREMENT key is declared on its column, unnamed.
            batch_op.create_primary_key(batch_op.f(f'pk_{table}'), ['id'])
        for sql in triggers:
            bind.exec_driver_sql(sql)
    dangling = bind.exec_driver_sql('PRAGMA foreign_key_check').all()
    if dangling:
        raise RuntimeError(f'foreign key check failed after recreating the tables: {dangling}')
