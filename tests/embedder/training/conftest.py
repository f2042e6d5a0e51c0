"""Fixtures: a tiny generated training tree of per-person folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.embedder.training.fakes import write_training_tree


@pytest.fixture
def train_dir(tmp_path: Path) -> Path:
    """Return a generated training tree of six persons."""
    return write_training_tree(tmp_path / "train")
