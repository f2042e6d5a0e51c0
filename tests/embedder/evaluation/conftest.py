"""Fixtures: a generated four-person split and a colour embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.embedder.evaluation.fakes import ColourEmbedder, write_split


@pytest.fixture
def split(tmp_path: Path) -> tuple[Path, Path]:
    """Return (query_dir, gallery_dir) of a generated four-person split."""
    return write_split(tmp_path / "split")


@pytest.fixture
def embedder() -> ColourEmbedder:
    """Return a colour embedder without metadata."""
    return ColourEmbedder()
