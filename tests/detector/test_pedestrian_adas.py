"""pedestrian-detection-adas-0002 on real images (needs ../shared/models and ../shared/data)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from base.boxes import iou_matrix
from base.images import BGRImage
from detector.pedestrian_adas import PedestrianAdasDetector, adas_network_file

CUHK03 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cuhk03" / "val" / "gallery"

needs_crops = pytest.mark.skipif(not CUHK03.is_dir(), reason=f"CUHK03 crops not found at {CUHK03}")


def person_crops(count: int) -> list[BGRImage]:
    """Return ``count`` CUHK03 validation crops of different persons (hand-drawn boxes)."""
    files = sorted(CUHK03.glob("*/*_05.jpg"))[:count]
    return [cv2.imread(str(path)) for path in files]


def full_hd_street(crops: list[BGRImage], height: int = 130) -> tuple[BGRImage, list[list[int]]]:
    """Paste person crops, ``height`` px tall, across a 1920x1080 textured scene; return it and their boxes.

    One crop straddles the first tile edges (x = 672, y = 384 for 672x384 tiles with 25% overlap
    spread over 1920x1080), so a tile cuts it.
    """
    rng = np.random.default_rng(0)
    scene = cv2.resize(rng.integers(80, 170, (27, 48, 3)).astype(np.uint8), (1920, 1080),
                       interpolation=cv2.INTER_CUBIC)
    spots = [(100, 200), (330, 480), (560, 760), (650, 330), (1010, 480), (1300, 760), (1560, 200),
             (1750, 480)]
    boxes = []
    for crop, (x, y) in zip(crops, spots):
        width = round(crop.shape[1] * height / crop.shape[0])
        scene[y:y + height, x:x + width] = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
        boxes.append([x, y, width, height])
    return scene, boxes


def test_missing_network_names_the_path_and_the_setting(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"REID_DETECTOR_MODEL"):
        adas_network_file(tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope")):
        PedestrianAdasDetector(tmp_path / "nope").load()


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"nms_iou": 2.0}, {"max_stretch": 0.5},
                                 {"crop_margin": -0.1}, {"precision": "fp8"}])
def test_bad_options_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        PedestrianAdasDetector(**bad)


@needs_crops
def test_a_person_crop_gives_one_box_around_the_person(adas: PedestrianAdasDetector) -> None:
    for crop in person_crops(10):
        found = adas.detect(crop)
        assert len(found) == 1, found
        height, width = crop.shape[:2]
        assert iou_matrix(np.array([found[0].as_list()]), np.array([[0, 0, width, height]]))[0, 0] >= 0.6


@pytest.mark.parametrize("image", [
    np.zeros((360, 480, 3), np.uint8),
    np.full((1080, 1920, 3), 128, np.uint8),
    np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8),
], ids=["black", "gray-full-hd", "noise"])
def test_blank_and_noise_images_give_nothing(adas: PedestrianAdasDetector, image: np.ndarray) -> None:
    assert adas.detect(image) == []


@needs_crops
def test_batch_equals_single_for_mixed_sizes(adas: PedestrianAdasDetector,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    crops = person_crops(3)
    scene, _ = full_hd_street(crops)
    images = [*crops, cv2.resize(scene, (480, 270)), np.ascontiguousarray(crops[0][:, ::-1])]
    whole = adas.detect_batch(images, 0.2, tiles=False)
    monkeypatch.setattr(adas, "batch_size", 2)
    chunked = adas.detect_batch(images, 0.2, tiles=False)
    monkeypatch.undo()
    for batch in (whole, chunked):
        for image, found in zip(images, batch):
            single = adas.detect(image, 0.2, tiles=False)
            assert [d.as_list() for d in found] == [d.as_list() for d in single]
            assert [d.score for d in found] == pytest.approx([d.score for d in single], abs=1e-4)


@needs_crops
def test_tiles_find_130_px_persons_on_a_full_hd_frame(adas: PedestrianAdasDetector) -> None:
    scene, truth = full_hd_street(person_crops(8))
    whole = adas.detect(scene, tiles=False)
    tiled = adas.detect(scene)
    assert len(adas.windows(1920, 1080)) > 1
    found = iou_matrix(np.array([d.as_list() for d in tiled]).reshape(-1, 4), np.array(truth))
    assert (found.max(axis=0) >= 0.5).sum() >= 7, tiled  # whole frame: 130 px shrink to 46 px
    assert len(whole) < len(tiled)
    assert (found >= 0.3).sum(axis=0).max() == 1  # nobody, the cut one included, got two boxes


@needs_crops
def test_threads_detecting_at_once_get_their_own_boxes(adas: PedestrianAdasDetector) -> None:
    crops = person_crops(4)
    scene, _ = full_hd_street(crops)
    images = [*crops, scene]  # the scene runs in tiles: several batches per call
    alone = [[d.as_list() for d in adas.detect(image, 0.2)] for image in images]
    with ThreadPoolExecutor(len(images)) as pool:
        together = list(pool.map(lambda image: [d.as_list() for d in adas.detect(image, 0.2)], images * 2))
    assert together == alone * 2


@needs_crops
def test_bf16_finds_the_boxes_f32_finds() -> None:
    crops = person_crops(8)
    scene, _ = full_hd_street(crops)
    exact, fast = (PedestrianAdasDetector(precision=precision) for precision in ("f32", "bf16"))
    for image in (*crops, scene):
        want, got = exact.detect(image, 0.3), fast.detect(image, 0.3)
        assert len(got) == len(want)
        if want:
            overlaps = iou_matrix(np.array([d.as_list() for d in want]), np.array([d.as_list() for d in got]))
            assert overlaps.max(axis=1).min() >= 0.9
