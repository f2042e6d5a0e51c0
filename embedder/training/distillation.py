"""Targets for distilling an ensemble of trained models into the network being trained.

Each teacher (a model directory) embeds every training image with its own preprocessing; the
unit vectors are concatenated and mapped by a Fisher LDA, fitted on the same images, to
``dims``-d unit vectors: what the ensemble plus a projection would embed. The student learns
to reproduce them through a linear head on its embedding (``ReidNet``'s ``distill`` layer), so
one network carries what several measured.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from embedder.base import l2_normalize
from embedder.datasets import LabelledImage, list_identity_folders
from embedder.evaluation.evaluate import embed_items
from embedder.reid_model import ReidEmbedder
from embedder.training.lda import SHRINKAGE, check_dims, fit_lda

log = logging.getLogger(__name__)

TARGETS_FILE = "teacher_targets.npz"


def teacher_targets(teachers: Sequence[Path], data_dir: Path, dims: int, *, batch_size: int = 64,
                    progress: bool = True) -> NDArray[np.float32]:
    """Return the (N, dims) unit targets of DATA_DIR's images, in ``list_identity_folders`` order.

    Raises:
        ValueError: no teachers, or ``dims`` outside what the LDA can fit.
        FileNotFoundError: a teacher directory lacks a model, or DATA_DIR holds no images.
        ImageError: an image cannot be read.
    """
    embedders = [ReidEmbedder(Path(teacher), batch_size=batch_size) for teacher in teachers]
    return _targets(embedders, list_identity_folders(Path(data_dir)), dims, progress)


def _targets(embedders: list[ReidEmbedder], items: list[LabelledImage], dims: int,
             progress: bool) -> NDArray[np.float32]:
    """Embed ``items`` with every teacher, join the unit vectors and project them by LDA."""
    if not embedders:
        raise ValueError("distillation needs at least one teacher model")
    persons = [item.person for item in items]
    check_dims(dims, sum(embedder.dim for embedder in embedders), len(set(persons)))
    joined = np.hstack([
        embed_items(embedder, items, embedder.batch_size, progress, desc=f"teacher {embedder.model_id}")
        for embedder in embedders])
    return l2_normalize(joined @ fit_lda(joined, persons, dims, SHRINKAGE))


def cached_teacher_targets(path: Path, teachers: Sequence[Path], data_dir: Path, dims: int, *,
                           progress: bool = True) -> NDArray[np.float32]:
    """Return ``teacher_targets``, read from ``path`` when it was made from the same teachers,
    data and size, else computed and written there.

    Raises:
        As ``teacher_targets``.
    """
    embedders = [ReidEmbedder(Path(teacher), batch_size=64) for teacher in teachers]
    items = list_identity_folders(Path(data_dir))
    key = json.dumps({"teachers": [embedder.model_id for embedder in embedders],
                      "images": [str(item.path.relative_to(data_dir)) for item in items],
                      "dims": dims})
    path = Path(path)
    if path.is_file():
        with np.load(path) as archive:
            if archive["key"].tobytes().decode() == key:
                return archive["targets"]
    targets = _targets(embedders, items, dims, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp.npz")
    np.savez(partial, targets=targets, key=np.frombuffer(key.encode(), dtype=np.uint8))
    partial.replace(path)
    log.info("wrote %s distillation targets of %d images to %s", targets.shape[1], len(targets), path)
    return targets
