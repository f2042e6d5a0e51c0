"""Alembic migrations of the gallery database (run them with ``reid db upgrade``)."""
