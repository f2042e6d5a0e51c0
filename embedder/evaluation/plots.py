"""Figures of an evaluation: CMC, ROC, score histograms and a montage of ranked results."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from base.images import BGRImage, read_image
from embedder.evaluation.evaluate import EvaluationReport
from embedder.evaluation.metrics import roc_curve, valid_gallery_mask

log = logging.getLogger(__name__)

TILE_SIZE = (64, 128)  # width, height of each montage image
_BORDER = 4
_CAPTION = 18
_GREEN = (40, 170, 40)
_RED = (40, 40, 220)
_GREY = (128, 128, 128)
TITLE_SIZE = 9  # points: a model id fits across a 6-inch figure


def plot_cmc(report: EvaluationReport, path: Path, max_rank: int = 20) -> Path:
    """Draw the CMC curve for ranks 1..``max_rank`` into a PNG at ``path``."""
    ranks = np.arange(1, min(max_rank, len(report.cmc)) + 1)
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(ranks, report.cmc[:len(ranks)] * 100, marker="o")
    axes.set(xlabel="rank", ylabel="matching rate (%)", ylim=(0, 100), xticks=ranks)
    axes.set_title(f"CMC - {report.model_id}\n(rank-1 {report.rank1:.1%}, mAP {report.mAP:.1%})",
                   fontsize=TITLE_SIZE)
    axes.grid(alpha=0.3)
    figure.savefig(path, dpi=100)
    return path


def plot_roc(report: EvaluationReport, path: Path) -> Path:
    """Draw the ROC curve on a log false-positive axis with the threshold's operating point."""
    genuine, impostor = report.scores()
    fpr, tpr, _ = roc_curve(genuine, impostor)
    floor = 0.5 / impostor.size  # log axes cannot show 0: draw it half a pair below the least rate
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(np.maximum(fpr, floor), tpr, label="ROC")
    point = (max(report.verification["false_detection_rate"], floor),
             report.verification["detection_rate"])
    axes.plot(*point, marker="o", color="crimson", linestyle="none",
              label=f"threshold {report.threshold:.3f}: FPR {point[0]:.2%}, TPR {point[1]:.1%}")
    axes.set_xscale("log")
    axes.set(xlim=(floor, 1), ylim=(0, 1.01), xlabel="false positive rate (false match rate)",
             ylabel="true positive rate (detection rate)")
    axes.set_title(f"ROC\n{report.model_id}", fontsize=TITLE_SIZE)
    axes.grid(alpha=0.3, which="both")
    axes.legend(loc="upper left")
    figure.savefig(path, dpi=100)
    return path


def plot_score_histogram(report: EvaluationReport, path: Path) -> Path:
    """Draw the same-person and different-person score distributions with the threshold."""
    genuine, impostor = report.scores()
    bins = np.linspace(min(genuine.min(), impostor.min()), max(genuine.max(), impostor.max()), 60).tolist()
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.hist(impostor, bins=bins, density=True, alpha=0.6, label=f"different person ({impostor.size})")
    axes.hist(genuine, bins=bins, density=True, alpha=0.6, label=f"same person ({genuine.size})")
    axes.axvline(report.threshold, color="black", linestyle="--",
                 label=f"threshold {report.threshold:.3f}")
    axes.set(xlabel="cosine similarity", ylabel="density")
    axes.set_title(f"Scores\n{report.model_id}", fontsize=TITLE_SIZE)
    axes.legend()
    figure.savefig(path, dpi=100)
    return path


def _tile(image: BGRImage, colour: tuple[int, int, int], caption: str) -> BGRImage:
    """Resize ``image`` to a tile with a ``colour`` border and ``caption`` beneath."""
    width, height = TILE_SIZE
    framed = cv2.copyMakeBorder(cv2.resize(image, TILE_SIZE, interpolation=cv2.INTER_AREA),
                                _BORDER, _BORDER, _BORDER, _BORDER, cv2.BORDER_CONSTANT, value=colour)
    tile = np.full((height + 2 * _BORDER + _CAPTION, width + 2 * _BORDER, 3), 255, dtype=np.uint8)
    tile[:framed.shape[0]] = framed
    cv2.putText(tile, caption, (3, tile.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def ranked_montage(report: EvaluationReport, queries: int = 6, top_k: int = 10) -> BGRImage:
    """Lay out a few queries, each followed by its top-k gallery matches.

    Queries are spread evenly over those with a valid match. Each match has a green border when
    it shows the query's person, red otherwise, and its score beneath; gallery entries excluded
    from ranking (same person, same camera) are left out as in the metrics.

    Returns:
        (H, W, 3) uint8 BGR image.
    """
    valid_queries = np.flatnonzero(~np.isnan(report.average_precision))
    chosen = valid_queries[np.unique(np.linspace(0, len(valid_queries) - 1, queries).round().astype(int))]
    valid = valid_gallery_mask(report.query_ids, report.gallery_ids,
                               [item.camera for item in report.query],
                               [item.camera for item in report.gallery])
    gap = np.full((TILE_SIZE[1] + 2 * _BORDER + _CAPTION, 12, 3), 255, dtype=np.uint8)
    rows = []
    for q in chosen:
        query = report.query[q]
        order = [g for g in np.argsort(-report.similarity[q], kind="stable") if valid[q, g]][:top_k]
        tiles = [_tile(read_image(query.path), _GREY, f"q {query.person}"[:10]), gap]
        for g in order:
            match = report.gallery[g]
            colour = _GREEN if match.person == query.person else _RED
            tiles.append(_tile(read_image(match.path), colour, f"{report.similarity[q, g]:.3f}"))
        row = np.hstack(tiles)
        full_width = (top_k + 1) * tiles[0].shape[1] + gap.shape[1]
        rows.append(np.pad(row, ((0, 6), (0, full_width - row.shape[1]), (0, 0)),
                           constant_values=255))
    return np.vstack(rows)


def write_plots(report: EvaluationReport, out_dir: Path) -> list[Path]:
    """Write cmc.png, roc.png, scores.png and ranked.png into ``out_dir`` (created if missing).

    Raises:
        ValueError: the split has no different-person pair, so there is no ROC to draw.
        ImageError: an image of the split can no longer be read for the montage.
    """
    if report.counts["impostor_pairs"] == 0:
        raise ValueError("plots need different-person pairs; the gallery shows only the query persons")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        plot_cmc(report, out_dir / "cmc.png"),
        plot_roc(report, out_dir / "roc.png"),
        plot_score_histogram(report, out_dir / "scores.png"),
    ]
    montage_path = out_dir / "ranked.png"
    if not cv2.imwrite(str(montage_path), ranked_montage(report)):
        raise OSError(f"could not write {montage_path}")
    paths.append(montage_path)
    log.info("wrote %s", ", ".join(str(path) for path in paths))
    return paths
