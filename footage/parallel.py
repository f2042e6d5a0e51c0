"""Analysing several videos at once, one process per core, with progress bars in the parent.

TensorFlow models do not pickle, so each worker process builds its own detector and embedder
from plain strings (a registry name or model directory, or ``module:attribute`` naming a
factory callable taking no arguments) and keeps them for every video it gets.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import queue
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from detector.base import Detector
from detector.registry import build_detector
from embedder.base import Embedder
from embedder.registry import build_embedder
from footage.analysis import VideoAnalysis, analyse_video
from footage.sampling import VideoError, probe_video
from footage.settings import FootageSettings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _WorkerState:
    """What a worker process keeps between videos; the models are built on first use."""

    updates: Queue[tuple[int, int]]
    detector: str
    embedder: str
    detector_options: dict[str, Any]
    embedder_options: dict[str, Any]
    threads: int
    models: tuple[Detector, Embedder] | None = None


_state: _WorkerState | None = None  # set in worker processes only, by _init_worker


@dataclass(frozen=True, slots=True)
class VideoOutcome:
    """The result for one video: its analysis, or why there is none."""

    path: Path
    analysis: VideoAnalysis | None
    error: str | None = None


def build_models(detector: str, embedder: str, detector_options: dict[str, Any] | None = None,
                 threads: int | None = None,
                 embedder_options: dict[str, Any] | None = None) -> tuple[Detector, Embedder]:
    """Build an unloaded detector and embedder from their registry specs.

    Args:
        detector: a ``detector.registry`` name, or ``module:attribute`` of a factory.
        detector_options: plain keyword arguments for ``build_detector`` (tiling, model path, precision).
        embedder: an ``embedder.registry`` name or model directory, or ``module:attribute``.
        threads: CPU threads each model may compute with (``LazyModel.limit_threads``); None: its own choice.
        embedder_options: plain keyword arguments for ``build_embedder`` (precision).

    Raises:
        KeyError: a name is unknown; the message lists the known ones.
    """
    models = (build_detector(detector, **(detector_options or {})),
              build_embedder(embedder, **(embedder_options or {})))
    if threads is not None:
        for model in models:
            model.limit_threads(threads)
    return models


def analyse_videos(paths: Sequence[Path], settings: FootageSettings, *, detector: str,
                   embedder: str, detector_options: dict[str, Any] | None = None,
                   embedder_options: dict[str, Any] | None = None, workers: int | None = None,
                   show_progress: bool = True) -> Iterator[VideoOutcome]:
    """Analyse videos in parallel processes, yielding each outcome as soon as it is ready.

    Args:
        paths: video files.
        settings: the analysis settings, the same for all.
        detector, embedder: model specs for ``build_models``, built once per worker.
        detector_options, embedder_options: ``build_detector``'s and ``build_embedder``'s keyword
            arguments (plain values: they are pickled).
        workers: processes to use; by default one per core, at most one per video. The
            cores are shared out among them as TensorFlow and OpenCV threads.
        show_progress: draw a tqdm bar per running video and one overall, on stderr.

    Yields:
        One outcome per path, in order of completion; a video that fails yields its error
        instead of stopping the others.
    """
    if not paths:
        return
    cores = os.cpu_count() or 1
    count = max(1, min(workers or cores, len(paths)))
    totals = [_frame_count(path) for path in paths]
    context = multiprocessing.get_context("spawn")
    updates: Queue[tuple[int, int]] = context.Queue()
    overall = tqdm(total=sum(totals), unit="frame", desc="footage", disable=not show_progress)
    bars: dict[int, tqdm] = {}
    finished: set[int] = set()
    with cf.ProcessPoolExecutor(count, mp_context=context, initializer=_init_worker,
                                initargs=(updates, detector, embedder, dict(detector_options or {}),
                                          dict(embedder_options or {}), max(1, cores // count))) as pool:
        futures = {pool.submit(_analyse_one, i, path, settings): i
                   for i, path in enumerate(paths)}
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            _drain(updates, overall, bars, finished, paths, totals, show_progress)
            for future in done:
                index = futures[future]
                finished.add(index)
                bar = bars.pop(index, None)
                if bar is not None:
                    bar.close()
                yield _outcome(paths[index], future)
        _drain(updates, overall, bars, finished, paths, totals, show_progress)
    overall.close()


def _frame_count(path: Path) -> int:
    """Return the container's frame count, 0 when unknown or unreadable."""
    try:
        return probe_video(path).frame_count
    except VideoError:
        return 0


def _drain(updates: Queue[tuple[int, int]], overall: tqdm, bars: dict[int, tqdm],
           finished: set[int], paths: Sequence[Path], totals: Sequence[int],
           show_progress: bool) -> None:
    """Apply the progress reports waiting in ``updates`` to the bars of running videos."""
    while True:
        try:
            index, frames = updates.get_nowait()
        except queue.Empty:
            return
        overall.update(frames)
        if index in finished:
            continue
        if index not in bars:
            bars[index] = tqdm(total=totals[index] or None, unit="frame", leave=False,
                               desc=paths[index].name, disable=not show_progress)
        bars[index].update(frames)


def _outcome(path: Path, future: cf.Future[VideoAnalysis]) -> VideoOutcome:
    """Turn a finished future into an outcome; the caller reports failures."""
    error = future.exception()
    if error is None:
        return VideoOutcome(path, future.result())
    log.debug("%s: analysis failed", path, exc_info=error)
    return VideoOutcome(path, None, f"{type(error).__name__}: {error}")


def _init_worker(updates: Queue[tuple[int, int]], detector: str, embedder: str,
                 detector_options: dict[str, Any], embedder_options: dict[str, Any], threads: int) -> None:
    """Set up a worker process: its share of the cores, the progress queue, the model specs."""
    global _state
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    cv2.setNumThreads(threads)
    _state = _WorkerState(updates, detector, embedder, detector_options, embedder_options, threads)


def _analyse_one(index: int, path: Path, settings: FootageSettings) -> VideoAnalysis:
    """Analyse one video in a worker, building the worker's models on first use."""
    state = _state
    assert state is not None, "_analyse_one runs in worker processes set up by _init_worker"
    if state.models is None:
        state.models = build_models(state.detector, state.embedder, state.detector_options, state.threads,
                                    state.embedder_options)
    detector, embedder = state.models
    return analyse_video(path, settings, detector, embedder,
                         progress=lambda frames: state.updates.put((index, frames)))
