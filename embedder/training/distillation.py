"""Targets for distilling an ensemble of trained models into the network being trained.

Each teacher (any embedder: a Keras model directory or an OpenVINO/ONNX network) embeds every
training image once, with its own preprocessing; the vectors are cached per teacher, so a new
run, a resumed one or another projection costs no teacher pass. The unit vectors are
concatenated and, with ``dims`` > 0, mapped by a Fisher LDA fitted on the training persons to
``dims``-d unit vectors; with ``dims`` 0 the target is the (scaled) concatenation itself, the
teachers' own space. The student learns to reproduce the targets through a linear head on its
embedding (``ReidNet``'s ``distill`` layer), so one network carries what several measured.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from embedder.base import Embedder, l2_normalize
from embedder.datasets import LabelledImage
from embedder.evaluation.evaluate import embed_items
from embedder.training.lda import SHRINKAGE, check_dims, fit_lda

log = logging.getLogger(__name__)

TEACHER_CACHE_DIR = "teacher_vectors"


def cached_teacher_vectors(embedder: Embedder, items: Sequence[LabelledImage], cache_dir: Path, *,
                           batch_size: int = 64, progress: bool = True) -> NDArray[np.float32]:
    """Return ``embedder``'s (N, dim) unit vectors of ``items``, embedding only the images that
    ``cache_dir/<model id>.npz`` does not hold yet (then adding them to it).

    Raises:
        ImageError: an image cannot be read.
    """
    path = Path(cache_dir) / f"{embedder.model_id}.npz"
    known: dict[str, NDArray[np.float32]] = {}
    if path.is_file():
        with np.load(path) as archive:
            known = dict(zip(archive["paths"].tolist(), archive["vectors"]))
    keys = [str(Path(item.path).resolve()) for item in items]
    missing = [item for item, key in zip(items, keys) if key not in known]
    if missing:
        vectors = embed_items(embedder, list(missing), batch_size, progress, desc=f"teacher {embedder.model_id}")
        known.update(zip((str(Path(item.path).resolve()) for item in missing), vectors))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.tmp.npz")
        np.savez(partial, paths=np.array(list(known)), vectors=np.stack(list(known.values())))
        partial.replace(path)
        log.info("cached %d new %s vectors in %s", len(missing), embedder.model_id, path)
    return np.stack([known[key] for key in keys]).astype(np.float32)


def teacher_targets(embedders: Sequence[Embedder], items: Sequence[LabelledImage], dims: int,
                    cache_dir: Path, *, progress: bool = True) -> NDArray[np.float32]:
    """Return the (N, dims) unit targets of ``items`` (N, sum of teacher dims with ``dims`` 0).

    Raises:
        ValueError: no teachers, or ``dims`` outside what the LDA can fit.
        ImageError: an image cannot be read.
    """
    if not embedders:
        raise ValueError("distillation needs at least one teacher model")
    persons = [item.person for item in items]
    if dims:
        check_dims(dims, sum(embedder.dim for embedder in embedders), len(set(persons)))
    joined = np.hstack([cached_teacher_vectors(embedder, items, cache_dir, progress=progress)
                        for embedder in embedders])
    if not dims:
        return l2_normalize(joined)
    return l2_normalize(joined @ fit_lda(joined, persons, dims, SHRINKAGE))


def target_dims(embedders: Sequence[Embedder], dims: int) -> int:
    """Return the size of the targets ``teacher_targets`` makes for ``dims``."""
    return dims or sum(embedder.dim for embedder in embedders)
