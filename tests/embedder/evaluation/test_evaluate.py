"""evaluate_folders, calibration and plots end to end on generated folders."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from base.images import ImageError
from embedder.evaluation.evaluate import (
    EvaluationReport,
    calibrate,
    evaluate_folders,
    store_calibration,
    with_threshold,
)
from embedder.evaluation.metrics import cmc_and_map
from embedder.evaluation.plots import TILE_SIZE, write_plots
from embedder.metadata import ModelMetadata
from tests.embedder.evaluation.fakes import CONFUSED_QUERY, ColourEmbedder


@pytest.fixture
def report(embedder: ColourEmbedder, split: tuple[Path, Path]) -> EvaluationReport:
    return evaluate_folders(embedder, *split, threshold=0.9, batch_size=3, progress=False)


def test_report_matches_the_metrics_on_direct_embeddings(
        report: EvaluationReport, embedder: ColourEmbedder) -> None:
    images = [cv2.imread(str(item.path)) for item in report.query + report.gallery]
    vectors = embedder.embed(images)
    similarity = vectors[:8] @ vectors[8:].T
    cmc, mean_ap, _ = cmc_and_map(similarity, report.query_ids, report.gallery_ids,
                                  [1] * 8, [2] * 8)
    np.testing.assert_allclose(report.similarity, similarity, atol=1e-6)
    np.testing.assert_allclose(report.cmc, cmc)
    assert report.mAP == pytest.approx(mean_ap)


def test_report_figures(report: EvaluationReport) -> None:
    # Every query but the one drawn in p0's colours finds its person first.
    assert report.rank1 == pytest.approx(7 / 8)
    assert report.rank10 == 1.0
    assert report.counts == {
        "query_images": 8, "gallery_images": 8, "query_persons": 4, "gallery_persons": 4,
        "valid_queries": 8, "genuine_pairs": 16, "impostor_pairs": 48}
    assert report.model_id == "fake-colour"
    assert report.query_embeddings.shape == (8, 6) and report.similarity.shape == (8, 8)
    assert {item.camera for item in report.query} == {1}


def test_to_dict_is_json_with_fractions(report: EvaluationReport) -> None:
    data = json.loads(json.dumps(report.to_dict()))
    assert {"rank1", "rank5", "rank10", "mAP", "cmc", "verification", "threshold", "counts",
            "model_id", "seconds"} <= data.keys()
    assert 0 <= data["mAP"] <= data["rank10"] <= 1
    assert "similarity" not in data and "query_embeddings" not in data


def test_missing_empty_and_unreadable_folders(embedder: ColourEmbedder, split: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    query, gallery = split
    with pytest.raises(FileNotFoundError):
        evaluate_folders(embedder, tmp_path / "absent", gallery, 0.5, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no"):
        evaluate_folders(embedder, tmp_path / "empty", gallery, 0.5, progress=False)
    broken = query / "p1" / "p1_c1_9.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(ImageError, match=r"p1_c1_9\.png"):
        evaluate_folders(embedder, query, gallery, 0.5, progress=False)


def test_calibrate_meets_the_target(report: EvaluationReport) -> None:
    genuine, impostor = report.scores()
    for target in (0.0, 0.1, 0.5):
        result = calibrate([report], target)
        assert result.fmr <= target
        assert result.fmr == np.mean(impostor >= result.threshold)
        assert result.tmr == np.mean(genuine >= result.threshold)
        # Smallest such threshold: any impostor score below it would break the target.
        below = impostor[impostor < result.threshold]
        if below.size:
            assert np.mean(impostor >= below.max()) > target
    assert calibrate([report], 0.0).threshold > impostor.max()


def test_with_threshold_recomputes_verification(report: EvaluationReport) -> None:
    loose = with_threshold(report, -1.0)
    assert loose.threshold == -1.0 and loose.verification["detection_rate"] == 1.0
    assert loose.verification["false_detection_rate"] == 1.0
    assert report.threshold == 0.9  # the original is untouched


def test_store_calibration_writes_metadata(report: EvaluationReport, tmp_path: Path) -> None:
    ModelMetadata(model_id="fake-colour", input_size=(48, 24), embedding_dim=6,
                  validation={"loss": 0.3}).save(tmp_path)
    result = calibrate([report], 0.1)
    store_calibration(tmp_path, result, [report])
    stored = ModelMetadata.load(tmp_path)
    assert stored.threshold == result.threshold
    assert stored.threshold_target_fmr == 0.1
    assert stored.validation["loss"] == 0.3
    assert stored.validation["rank1"] == report.rank1
    assert stored.validation["calibration"]["tmr"] == result.tmr


def test_store_calibration_refuses_another_models_directory(report: EvaluationReport,
                                                             tmp_path: Path) -> None:
    ModelMetadata(model_id="other", input_size=(48, 24), embedding_dim=6).save(tmp_path)
    with pytest.raises(ValueError, match="other"):
        store_calibration(tmp_path, calibrate([report], 0.1), [report])


def test_write_plots(report: EvaluationReport, tmp_path: Path) -> None:
    paths = write_plots(report, tmp_path / "plots")
    assert [path.name for path in paths] == ["cmc.png", "roc.png", "scores.png", "ranked.png"]
    for path in paths:
        assert cv2.imread(str(path)) is not None
    montage = cv2.imread(str(paths[-1]))
    tile_w, tile_h = TILE_SIZE[0] + 8, TILE_SIZE[1] + 8 + 18
    assert montage.shape == (6 * (tile_h + 6), 11 * tile_w + 12, 3)
    # Row 0 is query p0_c1_0; its best match is p0's gallery image: a green border.
    np.testing.assert_array_equal(montage[1, tile_w + 12 + 1], (40, 170, 40))


def test_montage_marks_a_wrong_match_red(report: EvaluationReport, tmp_path: Path) -> None:
    confused = [item.path.name for item in report.query].index(Path(CONFUSED_QUERY).name)
    assert confused == 7  # the last valid query, always among those shown (last row)
    montage = cv2.imread(str(write_plots(report, tmp_path)[-1]))
    tile_w, tile_h = TILE_SIZE[0] + 8, TILE_SIZE[1] + 8 + 18
    np.testing.assert_array_equal(montage[5 * (tile_h + 6) + 1, tile_w + 12 + 1], (40, 40, 220))
