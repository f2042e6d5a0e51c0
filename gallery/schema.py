"""Creating and upgrading the database schema with the project's Alembic migrations."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import migrations


def alembic_config(url: str) -> Config:
    """Return an Alembic config pointing at the ``migrations`` package and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def head_revision(url: str) -> str | None:
    """Return the newest migration's revision id."""
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    """Return the revision the database is at (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
