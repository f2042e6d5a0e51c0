"""Metrics checked against hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from embedder.evaluation.metrics import (
    cmc_and_map,
    pair_scores,
    roc_curve,
    threshold_at_fmr,
    verification_metrics,
)

# Three queries against five gallery images, no cameras.
GALLERY_IDS = ["A", "B", "A", "C", "B"]
QUERY_IDS = ["A", "B", "C"]
SIMILARITY = np.array([
    # g0 A  g1 B  g2 A  g3 C  g4 B
    [0.90, 0.80, 0.30, 0.50, 0.10],  # q0 A: order g0 g1 g3 g2 g4, hits 1 0 0 1 0
    [0.70, 0.20, 0.60, 0.10, 0.65],  # q1 B: order g0 g4 g2 g1 g3, hits 0 1 0 1 0
    [0.40, 0.90, 0.80, 0.20, 0.70],  # q2 C: order g1 g2 g4 g0 g3, hits 0 0 0 0 1
], dtype=np.float32)
# AP: q0 (1/1 + 2/4) / 2 = 0.75; q1 (1/2 + 2/4) / 2 = 0.5; q2 1/5 = 0.2.
# First hit at ranks 1, 2, 5, so CMC = [1/3, 2/3, 2/3, 2/3, 1].
EXPECTED_AP = [0.75, 0.5, 0.2]
EXPECTED_CMC = [1 / 3, 2 / 3, 2 / 3, 2 / 3, 1.0]


def test_cmc_and_map_hand_example() -> None:
    cmc, mean_ap, ap = cmc_and_map(SIMILARITY, QUERY_IDS, GALLERY_IDS, max_rank=5)
    np.testing.assert_allclose(cmc, EXPECTED_CMC)
    np.testing.assert_allclose(ap, EXPECTED_AP)
    assert mean_ap == pytest.approx(1.45 / 3)


def test_cmc_is_held_past_the_gallery_size() -> None:
    cmc, _, _ = cmc_and_map(SIMILARITY, QUERY_IDS, GALLERY_IDS, max_rank=7)
    np.testing.assert_allclose(cmc, [*EXPECTED_CMC, 1.0, 1.0])


def test_same_person_same_camera_is_removed_only_when_both_cameras_known() -> None:
    similarity = np.array([[0.95, 0.90, 0.80]], dtype=np.float32)
    gallery_ids = ["A", "B", "A"]
    # Cameras known: g0 (A, camera 1) is dropped; the order g1 g2 has its hit at rank 2, AP 1/2.
    cmc, mean_ap, _ = cmc_and_map(similarity, ["A"], gallery_ids, [1], [1, 2, 2], max_rank=2)
    np.testing.assert_allclose(cmc, [0.0, 1.0])
    assert mean_ap == pytest.approx(0.5)
    # No cameras, or g0's unknown: g0 stays; hits 1 0 1 give AP (1/1 + 2/3) / 2.
    for query_cams, gallery_cams in ((None, None), ([1], [None, 2, 2]), ([None], [1, 2, 2])):
        cmc, mean_ap, _ = cmc_and_map(similarity, ["A"], gallery_ids, query_cams, gallery_cams,
                                      max_rank=2)
        np.testing.assert_allclose(cmc, [1.0, 1.0])
        assert mean_ap == pytest.approx(5 / 6)


def test_queries_without_a_valid_match_are_skipped() -> None:
    similarity = np.array([
        [0.9, 0.1, 0.5],  # A: hit at rank 1
        [0.9, 0.8, 0.7],  # D: nobody in the gallery
        [0.2, 0.9, 0.1],  # B: its only match, g1, shares camera 1 and is dropped
    ], dtype=np.float32)
    cmc, mean_ap, ap = cmc_and_map(similarity, ["A", "D", "B"], ["A", "B", "C"],
                                   [1, 1, 1], [2, 1, 2], max_rank=3)
    np.testing.assert_allclose(cmc, [1.0, 1.0, 1.0])
    assert mean_ap == 1.0
    assert ap[0] == 1.0 and np.isnan(ap[1]) and np.isnan(ap[2])


def test_no_valid_query_is_an_error() -> None:
    with pytest.raises(ValueError, match="no query"):
        cmc_and_map(np.ones((1, 2), dtype=np.float32), ["X"], ["A", "B"])


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="gallery_ids must have 5"):
        cmc_and_map(SIMILARITY, QUERY_IDS, GALLERY_IDS[:4])


def test_verification_hand_example() -> None:
    # At 0.6 (ties count as matches):
    #   q0 A: g0 .9 TP, g1 .8 FP, g2 .3 FN, g3 .5 TN, g4 .1 TN
    #   q1 B: g0 .7 FP, g1 .2 FN, g2 .6 FP, g3 .1 TN, g4 .65 TP
    #   q2 C: g0 .4 TN, g1 .9 FP, g2 .8 FP, g3 .2 FN, g4 .7 FP
    result = verification_metrics(SIMILARITY, QUERY_IDS, GALLERY_IDS, threshold=0.6)
    assert (result["tp"], result["fp"], result["tn"], result["fn"]) == (2, 6, 4, 3)
    assert result["accuracy"] == pytest.approx(6 / 15)
    assert result["precision"] == pytest.approx(2 / 8)
    assert result["detection_rate"] == pytest.approx(2 / 5)
    assert result["false_detection_rate"] == pytest.approx(6 / 10)


def test_verification_precision_is_zero_when_nothing_is_predicted() -> None:
    result = verification_metrics(SIMILARITY, QUERY_IDS, GALLERY_IDS, threshold=1.0)
    assert (result["tp"], result["fp"]) == (0, 0)
    assert result["precision"] == 0.0
    assert result["accuracy"] == pytest.approx(10 / 15)


def test_pair_scores_split_by_person() -> None:
    genuine, impostor = pair_scores(SIMILARITY, QUERY_IDS, GALLERY_IDS)
    np.testing.assert_allclose(genuine, [0.9, 0.3, 0.2, 0.65, 0.2])
    assert impostor.size == 10


def test_roc_curve_hand_example() -> None:
    fpr, tpr, thresholds = roc_curve(np.array([0.9, 0.6]), np.array([0.7, 0.3]))
    np.testing.assert_allclose(thresholds, [np.inf, 0.9, 0.7, 0.6, 0.3])
    np.testing.assert_allclose(tpr, [0.0, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.5, 0.5, 1.0])


@pytest.mark.parametrize(("target", "expected"), [(1.0, 0.1), (0.2, 0.9), (0.15, 1.0), (0.1, 1.0)])
def test_threshold_at_fmr_picks_the_smallest_score_within_target(target: float, expected: float) -> None:
    impostor = np.arange(1, 11) / 10  # 0.1 .. 1.0; FMR(t) = (number >= t) / 10
    assert threshold_at_fmr(impostor, target) == pytest.approx(expected)


def test_threshold_at_fmr_never_splits_ties() -> None:
    impostor = np.array([0.5, 0.5, 0.5, 0.2], dtype=np.float32)
    assert threshold_at_fmr(impostor, 0.75) == 0.5  # FMR(0.5) = 3/4
    # 0.5 lets 3/4 through and nothing between 0.2 and 0.5 helps: step just above the top score.
    above = threshold_at_fmr(impostor, 0.5)
    assert above == float(np.nextafter(np.float32(0.5), np.float32(np.inf)))
    assert np.mean(impostor >= above) == 0.0


def test_threshold_at_zero_fmr_is_above_every_impostor() -> None:
    impostor = np.array([0.1, 0.8, 0.3])
    threshold = threshold_at_fmr(impostor, 0.0)
    assert threshold > 0.8 and threshold == pytest.approx(0.8)


def test_threshold_at_fmr_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="target_fmr"):
        threshold_at_fmr(np.array([0.1]), 1.5)
    with pytest.raises(ValueError, match="non-empty"):
        threshold_at_fmr(np.array([]), 0.1)
