"""Alembic environment: bound to the gallery's metadata, batch mode for SQLite."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from gallery.db import make_engine
from gallery.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """Emit SQL to stdout without a database connection."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a live connection (the caller's, or a new engine's)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("give a connection, or sqlalchemy.url in the Alembic configuration")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


def _run(connection: sa.Connection) -> None:
    """Run the migrations; on SQLite with foreign keys off, as batch mode's table copies need."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _set_sqlite_foreign_keys(connection, enabled=False)
    try:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if sqlite:
            _set_sqlite_foreign_keys(connection, enabled=True)


def _set_sqlite_foreign_keys(connection: sa.Connection, enabled: bool) -> None:
    """Turn SQLite's foreign key enforcement on or off for ``connection``.

    With it on, dropping a parent table to recreate it deletes the child rows (ON DELETE
    CASCADE). SQLite ignores the switch inside a transaction, so it is made on the driver's
    connection, which has none open between migrations.

    Raises:
        RuntimeError: the connection is inside a transaction, so the switch did not take.
    """
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA foreign_keys = {'ON' if enabled else 'OFF'}")
    if bool(driver.execute("PRAGMA foreign_keys").fetchone()[0]) != enabled:
        raise RuntimeError(f"could not turn SQLite foreign keys {'on' if enabled else 'off'}: "
                           "the migration connection is inside a transaction")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
