"""StageClock: exclusive wall and CPU seconds per stage; analyse_video's split of its time."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from base.images import BGRImage
from detector.base import Detection
from footage import stages
from footage.analysis import analyse_video
from footage.stages import STAGES, StageClock
from tests.conftest import ThumbnailEmbedder
from tests.footage.conftest import SETTINGS
from tests.footage.synthetic import ColourDetector


class FakeTime:
    """A wall and a CPU clock that move only when told."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def perf_counter(self) -> float:
        return self.wall

    def process_time(self) -> float:
        return self.cpu

    def spend(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    clock = FakeTime()
    monkeypatch.setattr(stages, "time", clock)
    return clock


def test_a_stage_inside_another_counts_once(fake_time: FakeTime) -> None:
    clock = StageClock()
    with clock.stage("track"):
        fake_time.spend(1.0, 0.5)
        with clock.stage("embed"):
            fake_time.spend(4.0, 3.0)
        fake_time.spend(2.0, 1.0)
    with clock.stage("track"):
        fake_time.spend(0.5, 0.5)
    assert (clock.wall["track"], clock.cpu["track"]) == (3.5, 2.0)
    assert (clock.wall["embed"], clock.cpu["embed"]) == (4.0, 3.0)
    assert clock.wall["decode"] == clock.cpu["decode"] == 0.0


def test_timed_counts_producing_items_not_using_them(fake_time: FakeTime) -> None:
    def frames() -> Iterator[int]:
        for frame in range(3):
            fake_time.spend(1.0, 1.0)  # decoding
            yield frame

    clock = StageClock()
    seen = []
    for frame in clock.timed(frames(), "decode"):
        with clock.stage("detect"):
            fake_time.spend(10.0, 10.0)
        seen.append(frame)
    assert seen == [0, 1, 2]
    assert (clock.wall["decode"], clock.wall["detect"]) == (3.0, 30.0)


class SleepyDetector(ColourDetector):
    """The colour-blob detector, sleeping ``pause`` seconds per frame."""

    pause = 0.02

    def _detect(self, images: Sequence[BGRImage], min_score: float) -> list[list[Detection]]:
        time.sleep(self.pause * len(images))
        return super()._detect(images, min_score)


class SleepyEmbedder(ThumbnailEmbedder):
    """The fake embedder, sleeping ``pause`` seconds per call."""

    pause = 1.0

    def _embed(self, images: Sequence[BGRImage]) -> np.ndarray:
        time.sleep(self.pause)
        return super()._embed(images)


def test_the_analysis_says_where_its_time_went(two_walkers: Path) -> None:
    analysis = analyse_video(two_walkers, SETTINGS, SleepyDetector(), SleepyEmbedder())
    assert set(analysis.stage_seconds) == set(analysis.stage_cpu_seconds) == set(STAGES)
    wall, cpu = analysis.stage_seconds, analysis.stage_cpu_seconds
    assert wall["embed"] >= SleepyEmbedder.pause  # one batched call
    assert wall["detect"] >= SleepyDetector.pause * analysis.frames_analysed
    assert wall["track"] < SleepyEmbedder.pause  # the embedding, called while tracks end, is not counted here
    assert cpu["embed"] < SleepyEmbedder.pause / 2  # sleeping costs no CPU time
    assert wall["decode"] > 0 and wall["motion"] > 0
    assert sum(wall.values()) <= analysis.seconds
    assert 0 < analysis.cpu_seconds and analysis.cpu_realtime_factor > analysis.realtime_factor
