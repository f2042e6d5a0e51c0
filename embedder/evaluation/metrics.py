"""Re-identification and verification metrics over a query-by-gallery similarity matrix.

Ranking follows torchreid's ``eval_market1501``; verification follows the seed paper's four
measures (accuracy, precision, detection rate, false detection rate). Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

Cameras = Sequence[int | None] | None


def _ids(ids: ArrayLike, name: str, length: int) -> NDArray:
    """Return ``ids`` as a 1-D array of ``length`` entries."""
    array = np.asarray(ids)
    if array.shape != (length,):
        raise ValueError(f"{name} must have {length} entries (one per row/column), got shape {array.shape}")
    return array


def _cameras(cams: Cameras, name: str, length: int) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Return (camera numbers, known mask), each (length,); unknown cameras read as -1."""
    if cams is None:
        return np.full(length, -1, dtype=np.int64), np.zeros(length, dtype=bool)
    if len(cams) != length:
        raise ValueError(f"{name} must have {length} entries or be None, got {len(cams)}")
    known = np.array([cam is not None for cam in cams], dtype=bool)
    values = np.array([-1 if cam is None else int(cam) for cam in cams], dtype=np.int64)
    return values, known


def _similarity(similarity: ArrayLike) -> NDArray[np.floating]:
    """Return ``similarity`` as a 2-D float array."""
    array = np.asarray(similarity)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"similarity must be a (Q, G) float array, got {array.dtype} {array.shape}")
    return array


def valid_gallery_mask(
    query_ids: ArrayLike,
    gallery_ids: ArrayLike,
    query_cams: Cameras = None,
    gallery_cams: Cameras = None,
) -> NDArray[np.bool_]:
    """Mark the gallery entries each query is ranked against.

    An entry is excluded when it shows the query's person from the query's camera and both
    cameras are known (the Market-1501 "junk" rule); with no cameras nothing is excluded.

    Returns:
        (Q, G) bool, True where the gallery entry counts for that query.
    """
    q_ids = np.asarray(query_ids)
    g_ids = np.asarray(gallery_ids)
    q_cams, q_known = _cameras(query_cams, "query_cams", len(q_ids))
    g_cams, g_known = _cameras(gallery_cams, "gallery_cams", len(g_ids))
    same_person = q_ids[:, None] == g_ids[None, :]
    same_camera = (q_cams[:, None] == g_cams[None, :]) & q_known[:, None] & g_known[None, :]
    return ~(same_person & same_camera)


def cmc_and_map(
    similarity: ArrayLike,
    query_ids: ArrayLike,
    gallery_ids: ArrayLike,
    query_cams: Cameras = None,
    gallery_cams: Cameras = None,
    max_rank: int = 50,
) -> tuple[NDArray[np.float64], float, NDArray[np.float64]]:
    """Compute the CMC curve and mean average precision, as torchreid's ``eval_market1501``.

    Each query ranks the gallery by similarity, highest first (ties keep gallery order), after
    dropping same-person same-camera entries (see ``valid_gallery_mask``). Queries left with
    no match are skipped. CMC[k] is the fraction of queries with a match within the top k+1;
    AP is the mean of the precision at the rank of each match. When fewer than ``max_rank``
    entries remain, the curve is held at its last value.

    Args:
        similarity: (Q, G) float, higher means more alike.
        query_ids, gallery_ids: (Q,) and (G,) person labels.
        query_cams, gallery_cams: (Q,) and (G,) camera numbers or None entries, or None.
        max_rank: length of the returned curve.

    Returns:
        cmc (max_rank,) float64, mAP over valid queries, per-query AP (Q,) float64 with NaN
        for skipped queries.

    Raises:
        ValueError: shapes disagree, ``max_rank`` < 1, or no query has a valid match.
    """
    similarity = _similarity(similarity)
    num_q, num_g = similarity.shape
    q_ids = _ids(query_ids, "query_ids", num_q)
    g_ids = _ids(gallery_ids, "gallery_ids", num_g)
    if max_rank < 1:
        raise ValueError(f"max_rank must be at least 1, got {max_rank}")
    valid = valid_gallery_mask(q_ids, g_ids, query_cams, gallery_cams)
    order = np.argsort(-similarity, axis=1, kind="stable")
    matches = g_ids[order] == q_ids[:, None]
    valid = np.take_along_axis(valid, order, axis=1)

    curves = []
    average_precision = np.full(num_q, np.nan)
    for q in range(num_q):
        hits = matches[q][valid[q]]
        if not hits.any():
            continue
        cumulative = np.cumsum(hits)
        curve = np.minimum(cumulative, 1)[:max_rank]
        curves.append(np.pad(curve, (0, max_rank - len(curve)), mode="edge"))
        precision_at_hits = cumulative[hits] / (np.flatnonzero(hits) + 1)
        average_precision[q] = precision_at_hits.mean()
    if not curves:
        raise ValueError("no query has a matching gallery image; check the person labels")
    cmc = np.stack(curves).mean(axis=0, dtype=np.float64)
    return cmc, float(np.nanmean(average_precision)), average_precision


def pair_scores(
    similarity: ArrayLike, query_ids: ArrayLike, gallery_ids: ArrayLike,
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """Split all query-gallery scores into same-person (genuine) and different-person (impostor).

    Returns:
        genuine scores (n_genuine,), impostor scores (n_impostor,), in row-major pair order.
    """
    similarity = _similarity(similarity)
    same = _ids(query_ids, "query_ids", similarity.shape[0])[:, None] == _ids(
        gallery_ids, "gallery_ids", similarity.shape[1])[None, :]
    return similarity[same], similarity[~same]


def verification_metrics(
    similarity: ArrayLike, query_ids: ArrayLike, gallery_ids: ArrayLike, threshold: float,
) -> dict[str, float | int]:
    """Score every query-gallery pair as "same person" when its similarity is >= ``threshold``.

    Precision is 0 when no pair is predicted positive; the detection rate (true positive
    rate) is 0 when there is no same-person pair, and the false detection rate (false
    positive rate) is 0 when there is no different-person pair.

    Args:
        similarity: (Q, G) float.
        query_ids, gallery_ids: (Q,) and (G,) person labels.
        threshold: cosine similarity at or above which a pair is called a match.

    Returns:
        ``accuracy``, ``precision``, ``detection_rate``, ``false_detection_rate``,
        ``threshold``, and the counts ``tp``, ``fp``, ``tn``, ``fn``.
    """
    genuine, impostor = pair_scores(similarity, query_ids, gallery_ids)
    tp = int(np.count_nonzero(genuine >= threshold))
    fn = genuine.size - tp
    fp = int(np.count_nonzero(impostor >= threshold))
    tn = impostor.size - fp
    total = tp + fp + tn + fn
    return {
        "accuracy": (tp + tn) / total if total else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "detection_rate": tp / (tp + fn) if tp + fn else 0.0,
        "false_detection_rate": fp / (fp + tn) if fp + tn else 0.0,
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def _scores(scores: ArrayLike, name: str) -> NDArray[np.floating]:
    """Return ``scores`` as a non-empty 1-D float array."""
    array = np.asarray(scores)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must be a non-empty 1-D float array, got {array.dtype} {array.shape}")
    return array


def roc_curve(
    genuine_scores: ArrayLike, impostor_scores: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Compute the ROC curve with a score >= threshold counted as a match.

    Thresholds are the distinct scores, highest first, preceded by +inf (where both rates are 0).

    Args:
        genuine_scores: (n_genuine,) same-person scores.
        impostor_scores: (n_impostor,) different-person scores.

    Returns:
        fpr, tpr, thresholds, each (n_thresholds,) float64; fpr and tpr never decrease.
    """
    genuine = np.sort(_scores(genuine_scores, "genuine_scores").astype(np.float64))
    impostor = np.sort(_scores(impostor_scores, "impostor_scores").astype(np.float64))
    thresholds = np.concatenate([[np.inf], np.unique(np.concatenate([genuine, impostor]))[::-1]])
    tpr = (genuine.size - np.searchsorted(genuine, thresholds, side="left")) / genuine.size
    fpr = (impostor.size - np.searchsorted(impostor, thresholds, side="left")) / impostor.size
    return fpr, tpr, thresholds


def threshold_at_fmr(impostor_scores: ArrayLike, target_fmr: float) -> float:
    """Return the smallest impostor score whose false match rate is at most ``target_fmr``.

    The false match rate of threshold t is the fraction of impostor scores >= t, so impostors
    tied at t all count as matches and are never split. When even the highest impostor score
    exceeds the target (e.g. ``target_fmr`` = 0), return the next representable value above it
    (in the scores' precision), where the false match rate is 0.

    Raises:
        ValueError: no scores, or ``target_fmr`` outside [0, 1].
    """
    if not 0.0 <= target_fmr <= 1.0:
        raise ValueError(f"target_fmr must lie in [0, 1], got {target_fmr}")
    impostor = np.sort(_scores(impostor_scores, "impostor_scores"))
    candidates = np.unique(impostor)
    fmr = (impostor.size - np.searchsorted(impostor, candidates, side="left")) / impostor.size
    allowed = candidates[fmr <= target_fmr]
    if allowed.size:
        return float(allowed[0])
    return float(np.nextafter(candidates[-1], np.inf))
