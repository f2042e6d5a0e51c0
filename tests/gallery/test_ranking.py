"""Aggregating image hits into persons."""

from __future__ import annotations

import numpy as np

from gallery.ranking import best_per_person, decide


def test_best_score_per_person_in_order() -> None:
    scores = np.array([0.9, 0.85, 0.8, 0.7, 0.1], np.float32)
    ids = np.array([11, 12, 21, 31, -1])
    owners = {11: (1, "Ann"), 12: (1, "Ann"), 21: (2, "Bob"), 31: (3, "Cy")}
    hits = best_per_person(scores, ids, owners)
    assert [(h[0], h[3]) for h in hits] == [(1, 11), (2, 21), (3, 31)]
    assert hits[0][2] == np.float32(0.9)


def test_hits_of_deleted_images_are_skipped() -> None:
    hits = best_per_person(np.array([0.9, 0.5], np.float32), np.array([5, 6]), {6: (2, "B")})
    assert [h[0] for h in hits] == [2]


def test_decide_applies_threshold_and_margin() -> None:
    hits = [(1, "A", 0.9, 11), (2, "B", 0.6, 21), (3, "C", 0.2, 31)]
    matches, margin = decide(hits, threshold=0.6, top_k=2)
    assert [(m.person_id, m.match) for m in matches] == [(1, True), (2, True)]
    assert margin is not None and abs(margin - 0.3) < 1e-9
    single, no_margin = decide(hits[:1], threshold=0.95, top_k=5)
    assert no_margin is None and not single[0].match
