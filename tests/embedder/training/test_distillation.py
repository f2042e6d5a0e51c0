"""Distillation targets: what the teachers' joint vectors look like, their cache, bad arguments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedder.datasets import list_identity_folders
from embedder.training.distillation import cached_teacher_targets, teacher_targets


def test_targets_are_unit_rows_that_group_each_persons_images(teachers: list[Path], train_dir: Path) -> None:
    targets = teacher_targets(teachers, train_dir, dims=4, progress=False)
    persons = np.array([item.person for item in list_identity_folders(train_dir)])
    assert targets.shape == (27, 4) and targets.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(targets, axis=1), 1.0, rtol=1e-5)
    similarity = targets @ targets.T
    same = persons[:, None] == persons[None, :]
    off_diagonal = ~np.eye(len(persons), dtype=bool)
    assert similarity[same & off_diagonal].mean() > similarity[~same].mean() + 0.5


def test_the_cache_is_read_back_for_the_same_teachers_and_remade_for_others(
        teachers: list[Path], train_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "targets.npz"
    first = cached_teacher_targets(path, teachers, train_dir, 4, progress=False)
    with np.load(path) as archive:
        key = archive["key"]
    np.savez(path, targets=np.zeros_like(first), key=key)  # a marked cache under the same key
    np.testing.assert_array_equal(cached_teacher_targets(path, teachers, train_dir, 4, progress=False), 0.0)
    remade = cached_teacher_targets(path, teachers[:1], train_dir, 3, progress=False)
    assert remade.shape == (27, 3) and np.abs(remade).sum() > 0


def test_no_teacher_or_too_many_dims_is_refused(teachers: list[Path], train_dir: Path) -> None:
    with pytest.raises(ValueError, match="at least one teacher"):
        teacher_targets([], train_dir, dims=4, progress=False)
    with pytest.raises(ValueError, match=r"dims must lie in 1\.\.5"):
        teacher_targets(teachers, train_dir, dims=6, progress=False)
