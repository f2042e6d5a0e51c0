"""Building detectors by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.pedestrian_adas import DEFAULT_ADAS_PATH, PedestrianAdasDetector
from detector.registry import DEFAULT_DETECTOR, build_detector
from detector.ssdlite import SSDLitePersonDetector
from detector.tiling import Tiling
from detector.whole_image import WholeImageDetector


def test_default_is_auto_with_kwargs_passed() -> None:
    assert DEFAULT_DETECTOR == "auto"
    detector = build_detector(min_height=50, batch_size=4)
    expected = PedestrianAdasDetector if DEFAULT_ADAS_PATH.is_dir() else SSDLitePersonDetector
    assert isinstance(detector, expected)
    assert (detector.min_height, detector.batch_size) == (50, 4)


def test_auto_falls_back_to_ssdlite_without_the_adas_files(tmp_path: Path) -> None:
    detector = build_detector("auto", model_path=tmp_path / "missing")
    assert isinstance(detector, SSDLitePersonDetector)


def test_pedestrian_adas_without_its_files_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path / 'missing'}.*REID_DETECTOR_MODEL"):
        build_detector("pedestrian-adas", model_path=tmp_path / "missing")


def test_tiling_options_reach_the_detector() -> None:
    assert build_detector("ssdlite").tiling == Tiling()
    assert build_detector("ssdlite", tiles=False).tiling == Tiling(enabled=False)
    assert build_detector("ssdlite", tile_size=600).tiling.tile_size((300, 300)) == (600, 600)
    plugin = build_detector("tests.footage.synthetic:ColourDetector", tiles=False)
    assert plugin.tiling == Tiling(enabled=False)
    with pytest.raises(ValueError, match="tile_width"):
        build_detector("ssdlite", tile_size=8)


def test_precision_reaches_pedestrian_adas_and_is_checked_for_all() -> None:
    if DEFAULT_ADAS_PATH.is_dir():
        assert build_detector("pedestrian-adas", precision="f32").precision == "f32"
    with pytest.raises(ValueError, match="precision must be one of auto, f32, bf16"):
        build_detector("ssdlite", precision="fp16")


def test_none_is_whole_image() -> None:
    assert isinstance(build_detector("none"), WholeImageDetector)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(KeyError,
                       match="unknown detector 'yolo'; known: auto, none, pedestrian-adas, ssdlite"):
        build_detector("yolo")


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        build_detector("ssdlite", batch_size=0)
    with pytest.raises(ValueError, match="nms_iou"):
        build_detector("ssdlite", nms_iou=1.5)
    with pytest.raises(TypeError):
        build_detector("none", min_height=50)


def test_ssdlite_tiles_twice_its_input_and_adas_at_its_input() -> None:
    ssdlite = build_detector("ssdlite")
    assert ssdlite.windows(512, 512) == [(0, 0, 512, 512)]  # a photograph: whole only
    assert {(w, h) for _, _, w, h in ssdlite.windows(1920, 1080)[1:]} == {(600, 600)}
    adas = PedestrianAdasDetector(Path("unused"))
    assert {(w, h) for _, _, w, h in adas.windows(1920, 1080)[1:]} == {(672, 384)}
    assert {(w, h) for _, _, w, h in PedestrianAdasDetector(
        Path("unused"), tiling=Tiling(tile_width=1008)).windows(1920, 1080)[1:]} == {(1008, 576)}
