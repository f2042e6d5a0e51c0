"""Distillation targets: what the teachers' joint vectors look like, their cache, bad arguments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedder.datasets import list_identity_folders
from embedder.registry import build_embedder
from embedder.training.distillation import (
    cached_teacher_vectors,
    target_dims,
    teacher_targets,
)

pytestmark = pytest.mark.slow  # each module run exports two teachers (TensorFlow → OpenVINO)


def test_targets_are_unit_rows_that_group_each_persons_images(teachers: list[Path], train_dir: Path,
                                                               tmp_path: Path) -> None:
    embedders = [build_embedder(str(teacher)) for teacher in teachers]
    items = list_identity_folders(train_dir)
    targets = teacher_targets(embedders, items, 4, tmp_path, progress=False)
    persons = np.array([item.person for item in items])
    assert targets.shape == (27, 4) and targets.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(targets, axis=1), 1.0, rtol=1e-5)
    similarity = targets @ targets.T
    same = persons[:, None] == persons[None, :]
    off_diagonal = ~np.eye(len(persons), dtype=bool)
    assert similarity[same & off_diagonal].mean() > similarity[~same].mean() + 0.5


def test_without_a_projection_the_target_is_the_teachers_joined_vectors(teachers: list[Path], train_dir: Path,
                                                                         tmp_path: Path) -> None:
    embedders = [build_embedder(str(teacher)) for teacher in teachers]
    items = list_identity_folders(train_dir)
    targets = teacher_targets(embedders, items, 0, tmp_path, progress=False)
    assert targets.shape == (27, target_dims(embedders, 0)) == (27, 2560)
    images = [embedder.embed([cv2_read(item.path) for item in items]) for embedder in embedders]
    np.testing.assert_allclose(targets, np.hstack(images) / np.sqrt(2), atol=1e-5)


def cv2_read(path: Path) -> np.ndarray:
    import cv2

    return cv2.imread(str(path))


def test_the_cache_embeds_each_image_once_per_teacher(teachers: list[Path], train_dir: Path, tmp_path: Path) -> None:
    teacher = build_embedder(str(teachers[0]))
    items = list_identity_folders(train_dir)
    first = cached_teacher_vectors(teacher, items[:10], tmp_path, progress=False)
    path = tmp_path / f"{teacher.model_id}.npz"
    with np.load(path) as archive:
        assert len(archive["paths"]) == 10
        marked = {"paths": archive["paths"], "vectors": np.zeros_like(archive["vectors"])}
    np.savez(path, **marked)  # the cache is what is read back: its rows come out as stored
    both = cached_teacher_vectors(teacher, items, tmp_path, progress=False)
    np.testing.assert_array_equal(both[:10], 0.0)
    assert np.abs(first).sum() > 0 and np.abs(both[10:]).sum() > 0
    with np.load(path) as archive:
        assert len(archive["paths"]) == len(items)


def test_no_teacher_or_too_many_dims_is_refused(teachers: list[Path], train_dir: Path, tmp_path: Path) -> None:
    items = list_identity_folders(train_dir)
    with pytest.raises(ValueError, match="at least one teacher"):
        teacher_targets([], items, 4, tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"dims must lie in 1\.\.5"):
        teacher_targets([build_embedder(str(teacher)) for teacher in teachers], items, 6, tmp_path,
                        progress=False)
