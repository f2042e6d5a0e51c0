"""Evaluate an embedder on query/gallery folders and calibrate its match threshold."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from base.images import read_image
from embedder.base import Embedder
from embedder.datasets import LabelledImage, list_identity_folders
from embedder.evaluation.metrics import (
    cmc_and_map,
    pair_scores,
    threshold_at_fmr,
    verification_metrics,
)
from embedder.evaluation.rerank import K1, K2, LAMBDA, k_reciprocal_distances
from embedder.metadata import ModelMetadata

log = logging.getLogger(__name__)


@dataclass
class EvaluationReport:
    """Ranking and verification figures of one embedder on one query/gallery split.

    The embeddings and the (Q, G) similarity matrix are kept so that plots and calibration
    reuse them; ``to_dict`` leaves them out.
    """

    rank1: float
    rank5: float
    rank10: float
    mAP: float
    cmc: NDArray[np.float64] = field(repr=False)
    verification: dict[str, float | int]
    threshold: float
    counts: dict[str, int]
    model_id: str
    seconds: float
    query_dir: Path
    gallery_dir: Path
    query: list[LabelledImage] = field(repr=False)
    gallery: list[LabelledImage] = field(repr=False)
    query_embeddings: NDArray[np.float32] = field(repr=False)
    gallery_embeddings: NDArray[np.float32] = field(repr=False)
    similarity: NDArray[np.float32] = field(repr=False)
    average_precision: NDArray[np.float64] = field(repr=False)

    @property
    def query_ids(self) -> list[str]:
        """Return the (Q,) query person labels."""
        return [item.person for item in self.query]

    @property
    def gallery_ids(self) -> list[str]:
        """Return the (G,) gallery person labels."""
        return [item.person for item in self.gallery]

    def scores(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Return the same-person and the different-person scores over all query-gallery pairs."""
        return pair_scores(self.similarity, self.query_ids, self.gallery_ids)

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-ready values; ranks and mAP are fractions in 0..1."""
        return {
            "rank1": self.rank1,
            "rank5": self.rank5,
            "rank10": self.rank10,
            "mAP": self.mAP,
            "cmc": [float(value) for value in self.cmc],
            "verification": dict(self.verification),
            "threshold": self.threshold,
            "counts": dict(self.counts),
            "model_id": self.model_id,
            "seconds": self.seconds,
            "query_dir": str(self.query_dir),
            "gallery_dir": str(self.gallery_dir),
        }


@dataclass(frozen=True)
class CalibrationResult:
    """A threshold chosen for a target false match rate, with the rates it achieves."""

    threshold: float
    target_fmr: float
    fmr: float
    tmr: float
    genuine_pairs: int
    impostor_pairs: int

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready values."""
        return asdict(self)


def _cameras(items: list[LabelledImage]) -> list[int | None]:
    """Return the camera of each item (None where its file name does not tell)."""
    return [item.camera for item in items]


def embed_items(
    embedder: Embedder,
    items: list[LabelledImage],
    batch_size: int = 64,
    progress: bool = True,
    desc: str = "embedding",
) -> NDArray[np.float32]:
    """Embed the images of ``items`` in batches, with a progress bar on stderr.

    Returns:
        (len(items), embedder.dim) float32 unit rows.

    Raises:
        ImageError: an image cannot be read.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    batches = []
    with tqdm(total=len(items), desc=desc, unit="img", file=sys.stderr,
              disable=not progress) as bar:
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            batches.append(embedder.embed([read_image(item.path) for item in batch]))
            bar.update(len(batch))
    if not batches:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.concatenate(batches)


def evaluate_folders(
    embedder: Embedder,
    query_dir: Path,
    gallery_dir: Path,
    threshold: float,
    batch_size: int = 64,
    progress: bool = True,
) -> EvaluationReport:
    """Rank every query image against the whole gallery and score every pair at ``threshold``.

    Both folders hold one sub-folder per person (see ``list_identity_folders``).

    Raises:
        FileNotFoundError: a folder is missing.
        ValueError: a folder holds no images, or no query person appears in the gallery.
        ImageError: an image cannot be read.
    """
    started = time.perf_counter()
    query = list_identity_folders(Path(query_dir))
    gallery = list_identity_folders(Path(gallery_dir))
    log.info("evaluating %s on %d queries against %d gallery images",
             embedder.model_id, len(query), len(gallery))
    query_embeddings = embed_items(embedder, query, batch_size, progress, "query")
    gallery_embeddings = embed_items(embedder, gallery, batch_size, progress, "gallery")
    similarity = query_embeddings @ gallery_embeddings.T

    query_ids = [item.person for item in query]
    gallery_ids = [item.person for item in gallery]
    cmc, mean_ap, average_precision = cmc_and_map(
        similarity, query_ids, gallery_ids,
        _cameras(query), _cameras(gallery))
    verification = verification_metrics(similarity, query_ids, gallery_ids, threshold)
    counts = {
        "query_images": len(query),
        "gallery_images": len(gallery),
        "query_persons": len(set(query_ids)),
        "gallery_persons": len(set(gallery_ids)),
        "valid_queries": int(np.count_nonzero(~np.isnan(average_precision))),
        "genuine_pairs": int(verification["tp"] + verification["fn"]),
        "impostor_pairs": int(verification["fp"] + verification["tn"]),
    }
    return EvaluationReport(
        rank1=float(cmc[0]), rank5=float(cmc[4]), rank10=float(cmc[9]), mAP=mean_ap, cmc=cmc,
        verification=verification, threshold=float(threshold), counts=counts,
        model_id=embedder.model_id, seconds=time.perf_counter() - started,
        query_dir=Path(query_dir), gallery_dir=Path(gallery_dir), query=query, gallery=gallery,
        query_embeddings=query_embeddings, gallery_embeddings=gallery_embeddings,
        similarity=similarity, average_precision=average_precision)


def reranked_figures(
    report: EvaluationReport, k1: int = K1, k2: int = K2, lambda_: float = LAMBDA,
) -> dict[str, float | int]:
    """Return rank-1/5/10 and mAP of ``report``'s split after k-reciprocal re-ranking.

    The gallery exclusions are those of the standard figures; the parameters come back with
    the figures, which are reported apart (re-ranking changes the protocol).

    Raises:
        ValueError: parameters out of range (see ``k_reciprocal_distances``).
    """
    distances = k_reciprocal_distances(report.query_embeddings, report.gallery_embeddings,
                                       k1, k2, lambda_)
    cmc, mean_ap, _ = cmc_and_map(
        -distances, report.query_ids, report.gallery_ids,
        _cameras(report.query), _cameras(report.gallery))
    return {"rank1": float(cmc[0]), "rank5": float(cmc[4]), "rank10": float(cmc[9]),
            "mAP": mean_ap, "k1": k1, "k2": k2, "lambda": lambda_}


def with_threshold(report: EvaluationReport, threshold: float) -> EvaluationReport:
    """Return a copy of ``report`` with the verification figures taken at ``threshold``."""
    verification = verification_metrics(report.similarity, report.query_ids, report.gallery_ids,
                                         threshold)
    return replace(report, verification=verification, threshold=float(threshold))


def calibrate(reports: Sequence[EvaluationReport], target_fmr: float) -> CalibrationResult:
    """Pick the smallest threshold whose false match rate on the pairs of all ``reports`` together
    is <= ``target_fmr`` (each report's query-gallery pairs; pairs across reports are not formed).

    Raises:
        ValueError: ``target_fmr`` outside [0, 1], or the splits have no same-person or no
            different-person pair.
    """
    scores = [report.scores() for report in reports]
    genuine = np.concatenate([pair[0] for pair in scores]) if scores else np.zeros(0, np.float32)
    impostor = np.concatenate([pair[1] for pair in scores]) if scores else np.zeros(0, np.float32)
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("calibration needs both same-person and different-person query-gallery pairs")
    threshold = threshold_at_fmr(impostor, target_fmr)
    return CalibrationResult(
        threshold=threshold,
        target_fmr=float(target_fmr),
        fmr=float(np.mean(impostor >= threshold)),
        tmr=float(np.mean(genuine >= threshold)),
        genuine_pairs=int(genuine.size),
        impostor_pairs=int(impostor.size))


def mean_figures(reports: Sequence[EvaluationReport]) -> dict[str, float]:
    """Return the unweighted mean rank-1, rank-5, rank-10 and mAP over ``reports`` (each set counts once).

    Raises:
        ValueError: no reports.
    """
    if not reports:
        raise ValueError("no evaluation to average")
    return {key: float(np.mean([getattr(report, key) for report in reports]))
            for key in ("rank1", "rank5", "rank10", "mAP")}


def set_name(report: EvaluationReport) -> str:
    """Name a split by its folders: the set folder holding ``query/`` and ``gallery/``, else the query folder."""
    query = Path(report.query_dir)
    return query.parent.name if query.name == "query" else query.name


def store_calibration(
    model_dir: Path, calibration: CalibrationResult, reports: Sequence[EvaluationReport],
) -> ModelMetadata:
    """Write the calibrated threshold and the validation figures into ``model_dir``'s metadata.json.

    ``validation`` keeps its other keys; ``rank1``, ``rank5``, ``rank10`` and ``mAP`` become the
    mean over ``reports``, ``sets`` lists each report's figures, folders and counts, and
    ``calibration`` is replaced.

    Raises:
        FileNotFoundError: ``model_dir`` has no metadata.json.
        ValueError: no reports, or one was made by another model than the one in ``model_dir``.
    """
    metadata = ModelMetadata.load(Path(model_dir))
    for report in reports:
        if metadata.model_id != report.model_id:
            raise ValueError(f"the evaluation is of model {report.model_id!r} but {model_dir} "
                             f"holds model {metadata.model_id!r}")
    metadata.threshold = calibration.threshold
    metadata.threshold_target_fmr = calibration.target_fmr
    metadata.validation.update({
        **mean_figures(reports),
        "sets": [{"name": set_name(report),
                  **{key: value for key, value in report.to_dict().items()
                     if key in ("rank1", "rank5", "rank10", "mAP", "query_dir", "gallery_dir", "counts")}}
                 for report in reports],
        "calibration": calibration.to_dict(),
    })
    path = metadata.save(Path(model_dir))
    log.info("stored threshold %.6f (target FMR %g) in %s", calibration.threshold,
             calibration.target_fmr, path)
    return metadata
