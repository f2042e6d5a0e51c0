"""Tiled detection: the tile layout, and merging boxes across tiles, on synthetic boxes with known answers."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from base.images import BGRImage
from detector.base import Detection, Detector
from detector.tiling import (
    Tiling,
    cut_sides,
    join_cut_boxes,
    merge_tiles,
    tile_windows,
    window_boxes,
)


def merged(rows_per_window: list[list[tuple[int, int, int, int, float]]],
           windows: list[tuple[int, int, int, int]], frame: tuple[int, int]) -> list[list[int]]:
    """Merge per-window ``(x, y, w, h, score)`` rows (window pixels); return the kept boxes, sorted."""
    boxes, scores, cut, tiles = window_boxes(rows_per_window, windows, frame)
    kept, _ = merge_tiles(boxes, scores, cut, tiles)
    return sorted(np.rint(kept).astype(int).tolist())


@pytest.mark.parametrize(("width", "height", "tile_w", "tile_h", "overlap"), [
    (1440, 1080, 672, 384, 0.25), (1920, 1080, 300, 300, 0.25), (480, 360, 300, 300, 0.5),
    (301, 300, 300, 300, 0.0), (1000, 200, 300, 300, 0.25),
])
def test_tiles_cover_the_frame_with_the_overlap_asked(width: int, height: int, tile_w: int,
                                                       tile_h: int, overlap: float) -> None:
    tiles = tile_windows(width, height, tile_w, tile_h, overlap)
    covered = np.zeros((height, width), bool)
    for x, y, w, h in tiles:
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
        assert w == min(tile_w, width) and h == min(tile_h, height)
        covered[y:y + h, x:x + w] = True
    assert covered.all()
    xs, ys = sorted({t[0] for t in tiles}), sorted({t[1] for t in tiles})
    assert xs[0] == 0 and xs[-1] + min(tile_w, width) == width
    assert ys[0] == 0 and ys[-1] + min(tile_h, height) == height
    for starts, side in ((xs, tile_w), (ys, tile_h)):
        for a, b in itertools.pairwise(starts):
            assert side - (b - a) >= overlap * side - 1  # shared by neighbours, rounding aside
    assert len(tiles) == len(xs) * len(ys)


def test_windows_are_automatic_from_the_frame_size() -> None:
    tiling = Tiling()
    assert tiling.windows(480, 360, (672, 384)) == [(0, 0, 480, 360)]  # fits: whole frame only
    assert tiling.windows(800, 400, (672, 384)) == [(0, 0, 800, 400)]  # less than 1.25 tiles
    windows = tiling.windows(1440, 1080, (672, 384))
    assert windows[0] == (0, 0, 1440, 1080) and len(windows) > 1
    assert all((w, h) == (672, 384) for _, _, w, h in windows[1:])
    assert Tiling(enabled=False).windows(1920, 1080, (300, 300)) == [(0, 0, 1920, 1080)]
    assert tiling.windows(1920, 1080, None) == [(0, 0, 1920, 1080)]  # no network input: no tiles
    wide = Tiling(tile_width=1344).windows(1440, 1080, (672, 384))
    assert all((w, h) == (1344, 768) for _, _, w, h in wide[1:])
    assert len(wide) < len(windows)


@pytest.mark.parametrize("bad", [{"tile_width": 8}, {"overlap": -0.1}, {"overlap": 0.95},
                                 {"min_excess": 0.5}, {"tile_min_score": 1.5}, {"max_box_share": 0.0}])
def test_bad_tiling_is_refused_naming_the_value(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        Tiling(**bad)


def test_only_tile_edges_inside_the_frame_cut() -> None:
    frame = (1000, 600)
    window = (400, 0, 300, 300)  # inner edges: left (x=400), right (x=700), bottom (y=300)
    boxes = np.array([[400, 10, 50, 100],    # touches the left edge: cut on the left
                      [650, 250, 50, 50],    # touches right and bottom: cut on both
                      [500, 0, 40, 80],      # touches the top, which is the frame's edge
                      [450, 100, 100, 100]])  # inside
    assert cut_sides(boxes, window, frame).tolist() == [
        [True, False, False, False], [False, False, True, True],
        [False, False, False, False], [False, False, False, False]]
    assert not cut_sides(boxes, (0, 0, 1000, 600), frame).any()  # the whole frame cuts nothing


def test_a_person_cut_by_a_tile_edge_is_one_whole_box() -> None:
    frame = (600, 300)
    windows = [(0, 0, 600, 300), (0, 0, 300, 300), (250, 0, 300, 300), (300, 0, 300, 300)]
    person = (220, 40, 120, 200)  # x 220..340: crosses x=300 and x=250, wider than the overlap
    found = [
        [],                                    # the whole frame missed them
        [(220, 40, 80, 200, 0.7)],             # tile 1: the left part, cut at x=300
        [(0, 40, 90, 200, 0.8)],               # tile 2 (x 250..550): the right part, cut at x=250
        [(0, 40, 40, 200, 0.6)],               # tile 3 (x 300..600): a sliver, cut at x=300
    ]
    assert merged(found, windows, frame) == [list(person)]


def test_a_person_seen_whole_in_one_tile_drops_the_parts_cut_in_others() -> None:
    frame = (600, 300)
    windows = [(0, 0, 600, 300), (0, 0, 300, 300), (200, 0, 300, 300)]
    found = [
        [],
        [(240, 50, 60, 150, 0.9)],    # tile 1: left part, cut at x=300, best score
        [(40, 50, 80, 150, 0.6)],     # tile 2 (x 200..500): the whole person, x 240..320
    ]
    assert merged(found, windows, frame) == [[240, 50, 80, 150]]


def test_the_whole_frame_box_and_tile_boxes_of_one_person_give_one_box() -> None:
    frame = (900, 600)
    windows = [(0, 0, 900, 600), (0, 0, 500, 400), (400, 0, 500, 400), (0, 200, 500, 400),
               (400, 200, 500, 400)]
    person = (300, 100, 200, 400)  # over all four tiles
    found = [
        [(302, 104, 196, 392, 0.8)],                                      # whole frame: all of them
        [(300, 100, 200, 300, 0.5)],                                      # top-left, cut right and bottom
        [(0, 100, 100, 300, 0.5)],                                        # top-right, cut left and bottom
        [(300, 0, 200, 300, 0.4)],                                        # bottom-left, cut right and top
        [(0, 0, 100, 300, 0.4)],                                          # bottom-right
    ]
    assert merged(found, windows, frame) == [[302, 104, 196, 392]]
    found[0] = []  # without the whole-frame pass the four parts join into the person
    assert merged(found, windows, frame) == [list(person)]


def test_neighbours_are_kept_apart() -> None:
    frame = (600, 300)
    windows = [(0, 0, 600, 300), (0, 0, 300, 300), (200, 0, 300, 300)]
    found = [
        [],
        [(180, 60, 60, 160, 0.9), (250, 70, 50, 150, 0.8)],  # A whole; B's left part, cut at x=300
        [(0, 60, 40, 160, 0.7), (50, 70, 80, 150, 0.8)],     # A's right part, cut at x=200; B whole
    ]
    # A: x 180..240 (seen whole in tile 1); B: x 250..330 (seen whole in tile 2). The cut parts
    # lie inside the whole boxes and go; A and B stay two boxes although their parts touch.
    assert merged(found, windows, frame) == [[180, 60, 60, 160], [250, 70, 80, 150]]


def test_parts_of_two_people_at_different_heights_do_not_join() -> None:
    boxes = np.array([[250, 0, 50, 100], [280, 30, 60, 100]], float)  # overlap, one cut right, one left
    cut = np.array([[False, False, True, False], [True, False, False, False]])
    joined, _, parts = join_cut_boxes(boxes, cut, np.array([1, 2]))
    assert parts == [[0, 1]] and joined.tolist() == [[250, 0, 90, 130]]  # agree: 70/130 >= 0.5
    boxes[1, 1] = 80  # now y 80..180 against 0..100: 20/180 < 0.5
    joined, _, parts = join_cut_boxes(boxes, cut, np.array([1, 2]))
    assert parts == [[0], [1]]


def random_persons(rng: np.random.Generator, frame: tuple[int, int], count: int,
                   heights: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Place up to ``count`` person boxes (h = 2.5 w) that neither overlap nor touch."""
    persons: list[tuple[int, int, int, int]] = []
    for _ in range(count * 20):
        h = int(rng.integers(*heights))
        w = max(4, h * 2 // 5)
        x, y = int(rng.integers(0, frame[0] - w)), int(rng.integers(0, frame[1] - h))
        if all(x + w + 4 <= px or px + pw + 4 <= x or y + h + 4 <= py or py + ph + 4 <= y
               for px, py, pw, ph in persons):
            persons.append((x, y, w, h))
        if len(persons) == count:
            break
    return persons


def oracle(persons: list[tuple[int, int, int, int]], window: tuple[int, int, int, int],
           min_visible: float) -> list[tuple[int, int, int, int, float]]:
    """What a perfect detector reports in ``window``: each person's visible part, in window pixels,
    when at least ``min_visible`` of its width and of its height is visible there."""
    wx, wy, ww, wh = window
    rows = []
    for x, y, w, h in persons:
        left, top = max(x, wx), max(y, wy)
        right, bottom = min(x + w, wx + ww), min(y + h, wy + wh)
        if right > left and bottom > top and right - left >= min_visible * w and bottom - top >= min_visible * h:
            rows.append((left - wx, top - wy, right - left, bottom - top, 0.9))
    return rows


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("frame", "input_size", "tile_width"), [
    ((1440, 1080), (672, 384), None), ((1920, 1080), (300, 300), 600), ((640, 480), (300, 300), 200),
], ids=["adas-1440x1080", "ssdlite-1920x1080", "ssdlite-640x480"])
def test_merging_a_perfect_detector_gives_the_persons_exactly(
        seed: int, frame: tuple[int, int], input_size: tuple[int, int], tile_width: int | None) -> None:
    rng = np.random.default_rng(seed)
    windows = Tiling(tile_width=tile_width).windows(*frame, input_size)
    assert len(windows) > 4
    tile_height = windows[1][3]
    persons = random_persons(rng, frame, 12, (40, int(0.7 * tile_height)))  # tiles' to find
    # Every part seen, whole frame blind to all: the parts must join into the persons.
    found = [[]] + [oracle(persons, window, 0.0) for window in windows[1:]]
    assert merged(found, windows, frame) == sorted(map(list, persons))
    # Slivers missed, whole frame sees the taller persons: the same answer.
    found = ([[(x, y, w, h, 0.95) for x, y, w, h in persons if h >= frame[1] // 5]]
             + [oracle(persons, window, 0.3) for window in windows[1:]])
    assert merged(found, windows, frame) == sorted(map(list, persons))


class ShrinkingBlobDetector(Detector):
    """A real, simple detector with a network-like input: each window is resized to 200x200 and
    saturated blobs of at least ``min_area`` input pixels are boxed, so small blobs in a large
    frame are found only in tiles, as small persons are."""

    model_id = "test-shrinking-blobs"
    input_size = (200, 200)
    min_area = 500

    def _load(self) -> None:
        """Nothing to load."""

    def _detect(self, images: Sequence[BGRImage], min_score: float) -> list[list[Detection]]:
        found = []
        for image in images:
            height, width = image.shape[:2]
            small = cv2.resize(image, self.input_size, interpolation=cv2.INTER_AREA)
            mask = (cv2.cvtColor(small, cv2.COLOR_BGR2HSV)[:, :, 1] > 80).astype(np.uint8)
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            sx, sy = width / self.input_size[0], height / self.input_size[1]
            boxes = []
            for x, y, w, h, area in stats[1:count].tolist():
                if area >= self.min_area:
                    left, top = round(x * sx), round(y * sy)
                    boxes.append(Detection(left, top, min(round((x + w) * sx), width) - left,
                                           min(round((y + h) * sy), height) - top, 0.9))
            found.append(boxes)
        return found


def test_a_real_detector_tiled_finds_small_persons_whole_across_tile_edges() -> None:
    scene = np.full((600, 1000, 3), 128, np.uint8)
    blobs = [(60, 40, 40, 100),     # inside the first tile
             (180, 300, 40, 100),   # across the first column edge (x = 200)
             (380, 140, 50, 120),   # across a column edge and a row edge: four tiles
             (800, 450, 40, 100)]   # in the last column and row
    for i, (x, y, w, h) in enumerate(blobs):
        scene[y:y + h, x:x + w] = ((40 * i) % 255, 200, 255 - 30 * i)
    detector = ShrinkingBlobDetector()
    assert detector.detect(scene, tiles=False) == []  # whole frame: each blob is too small
    windows = detector.windows(1000, 600)
    assert len(windows) > 10 and all(w == 200 and h == 200 for _, _, w, h in windows[1:])
    cut = [b for b in blobs if any(x < b[0] + b[2] and b[0] < x + w and not (
        x <= b[0] and b[0] + b[2] <= x + w and y <= b[1] and b[1] + b[3] <= y + h)
        for x, y, w, h in windows[1:])]
    assert cut, "some blob must be cut by a tile"
    found = sorted(d.as_list() for d in detector.detect(scene))
    assert len(found) == len(blobs)
    for box, blob in zip(found, sorted(map(list, blobs))):
        assert np.abs(np.array(box) - blob).max() <= 2, (box, blob)


def test_persons_taller_than_most_of_a_tile_are_left_to_the_whole_frame() -> None:
    scene = np.full((600, 1000, 3), 128, np.uint8)
    scene[100:550, 300:420] = (0, 200, 255)  # 450 px tall: more than two tiles
    scene[350:450, 500:540] = (255, 200, 0)  # 100 px tall, small
    detector = ShrinkingBlobDetector()
    assert detector.tiling.max_box_share == 0.7
    # Whole frame: the tall blob is found, the small one is too small once shrunk.
    assert [d.as_list() for d in detector.detect(scene, tiles=False)] == [[300, 99, 120, 453]]
    # Tiled: the tall blob's pieces fill whole tiles and are dropped; the small one is found in one.
    found = sorted(d.as_list() for d in detector.detect(scene))
    assert found == [[300, 99, 120, 453], [500, 350, 40, 100]]
    tiles_only = ShrinkingBlobDetector(Tiling(max_box_share=1.0))
    assert len(tiles_only.detect(scene)) == 2  # parts merged into the whole-frame box anyway
