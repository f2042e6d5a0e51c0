"""The Alembic migrations produce exactly the models' schema, and run down and up again."""

from __future__ import annotations

import pytest

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gallery.db import make_engine
from gallery.models import Base
from gallery.schema import alembic_config, upgrade

pytestmark = pytest.mark.both_databases


def schema_diff(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


def test_migrations_match_the_models(database_url: str) -> None:
    url = database_url
    upgrade(url)
    assert schema_diff(url) == []


def test_downgrade_to_base_and_up_again(database_url: str) -> None:
    url = database_url
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    engine = make_engine(url)
    assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()
    upgrade(url)
    assert schema_diff(url) == []
