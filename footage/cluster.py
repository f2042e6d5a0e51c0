"""Analysing videos on a Ray cluster: actors hold the models, tasks carry paths and analyses.

Each actor (one per CPU of the cluster by default) builds its detector and embedder once, as
the local worker processes do (``build_models``), and runs ``analyse_video`` -- the same function
as the local path, unchanged -- on each video it is given. Workers open the videos at the path
the driver gives them, so every node must see the recordings at the same path (a shared mount);
a worker that cannot read a file says so, naming its node. The analyses come back to the caller,
which stores them: workers need no database.

A worker that dies (its process killed, its node lost) loses only the video it was analysing,
which is handed to another worker once; a model that cannot be built stops the run, and an
analysis made with another detector than the driver's settings resolve to (a node with other
model files) is refused. Ray itself is imported only when ``analyse_videos_on_ray`` runs, so the
local path never loads it.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from detector.registry import build_detector
from footage.analysis import VideoAnalysis, analyse_video
from footage.parallel import VideoOutcome, build_models
from footage.settings import FootageSettings

log = logging.getLogger(__name__)

WORKER_CPUS = 1  # CPUs each actor reserves; its TensorFlow and OpenCV run this many threads
RETRIES = 1  # times a video whose worker died is handed to another worker
NO_CPU_WAIT_S = 120.0  # how long videos wait for a worker when the cluster has no CPU left
CONNECT_TIMEOUT_S = 10.0  # to reach a HOST:PORT address before Ray's own (minutes long) retries

ActorHandle = Any  # a Ray actor of VideoWorker: Ray's type hints do not follow ``.method.remote()`` calls


class ClusterError(RuntimeError):
    """The cluster cannot do the work at all: unreachable, no CPUs, or the models fail to build."""


class UnreadableVideo(OSError):
    """A worker cannot read a video at the path the driver gave (the share is not mounted there)."""


class VideoWorker:
    """What a Ray actor holds: the models, built and loaded once; ``analyse`` once per video.

    Args:
        detector, embedder, detector_options, embedder_options: as for ``build_models``; plain values.
        threads: threads for TensorFlow, OpenVINO and OpenCV in this process.
    """

    def __init__(self, detector: str, embedder: str, detector_options: dict[str, Any],
                 embedder_options: dict[str, Any], threads: int = WORKER_CPUS) -> None:
        os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
        cv2.setNumThreads(threads)
        self.where = f"worker {os.getpid()} on {socket.gethostname()}"
        self.detector, self.embedder = build_models(detector, embedder, detector_options, threads,
                                                    embedder_options)
        self.detector.load()
        self.embedder.load()

    def describe(self) -> str:
        """Return where this worker runs (process and host), for log lines and messages."""
        return self.where

    def analyse(self, path: Path, settings: FootageSettings) -> VideoAnalysis:
        """Analyse one video with this worker's models.

        Raises:
            UnreadableVideo: the file is missing or unreadable on this worker's node.
            VideoError: OpenCV cannot read it as a video (as on the local path).
        """
        if not os.access(path, os.R_OK):
            why = "permission denied" if path.exists() else "no such file"
            raise UnreadableVideo(f"{self.where} cannot read {path} ({why}): every node of the cluster must "
                                  "see the recordings at the driver's path (mount the share there)")
        return analyse_video(path, settings, self.detector, self.embedder)


def analyse_videos_on_ray(paths: Sequence[Path], settings: FootageSettings, *, address: str,
                          detector: str, embedder: str, detector_options: dict[str, Any] | None = None,
                          embedder_options: dict[str, Any] | None = None, workers: int | None = None,
                          show_progress: bool = True) -> Iterator[VideoOutcome]:
    """Analyse videos on the Ray cluster at ``address``, yielding each outcome as soon as it is ready.

    Args:
        paths: video files, at a path every node of the cluster can read.
        settings: the analysis settings, the same for all.
        address: the cluster: "auto" (the one this machine belongs to), "HOST:PORT" of its head
            (6379 by default), or "ray://HOST:PORT" of a Ray Client server.
        detector, embedder, detector_options, embedder_options: model specs for ``build_models``,
            built once per actor.
        workers: actors to start; by default one per CPU of the cluster, at most one per video.
        show_progress: draw a tqdm bar of finished videos on stderr.

    Yields:
        One outcome per path, in order of completion; a video that fails (unreadable, not a
        video, its worker lost twice) yields its error instead of stopping the others.

    Raises:
        ClusterError: the cluster cannot be reached, has no CPUs, or a worker cannot build the models.
    """
    if not paths:
        return
    options = dict(detector_options or {})
    try:  # what "auto" and the like resolve to here: every worker must resolve them alike
        expected_detector: str | None = build_detector(detector, **options).model_id
    except (KeyError, OSError, ValueError):
        expected_detector = None  # the workers will say why they cannot build it
    import ray  # only here: the local path never imports Ray

    owned = not ray.is_initialized()
    if owned:
        _check_reachable(address)
        try:
            ray.init(address=address, namespace="reid-footage")
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ClusterError(f"cannot connect to the Ray cluster at {address}: {error}") from error
    try:
        yield from _Dispatcher(paths, settings, (detector, embedder, options, dict(embedder_options or {})),
                               expected_detector, workers, show_progress).run()
    finally:
        if owned:
            ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail fast when a HOST:PORT address does not answer; leave "auto" and the like to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise ClusterError(f"no Ray cluster answers at {address}: {error}") from error


@dataclasses.dataclass
class _Dispatcher:
    """Keeps every actor busy with one video at a time and replaces actors that die."""

    paths: Sequence[Path]
    settings: FootageSettings
    models: tuple[str, str, dict[str, Any], dict[str, Any]]
    expected_detector: str | None  # the detector's model_id on the driver
    workers: int | None
    show_progress: bool
    actors: dict[ActorHandle, Any] = dataclasses.field(default_factory=dict)  # actor: its describe() ref

    def run(self) -> Iterator[VideoOutcome]:
        """Run every video and yield its outcome; release the actors however it ends."""
        import ray
        from ray.exceptions import RayActorError, RayError, RayTaskError

        cpus = _cpus()
        if cpus < WORKER_CPUS:
            raise ClusterError("the Ray cluster has no CPU for workers: start worker nodes with "
                               "`ray start --address HEAD:6379`")
        target = max(1, min(self.workers or cpus, cpus // WORKER_CPUS, len(self.paths)))
        if self.workers is not None and self.workers > target and self.workers <= len(self.paths):
            log.warning("%d workers asked for, but the cluster has %d CPUs: starting %d", self.workers, cpus, target)
        log.info("analysing %d videos on %d Ray workers (%d CPUs in the cluster)", len(self.paths), target, cpus)
        queue = collections.deque(range(len(self.paths)))
        losses: collections.Counter[int] = collections.Counter()
        running: dict[Any, tuple[ActorHandle, int]] = {}  # a result's ObjectRef: its actor, its video
        idle = [self._start() for _ in range(target)]
        spare = 2 * target  # replacements for actors that die
        starved_since: float | None = None
        bar = tqdm(total=len(self.paths), unit="video", desc="footage (ray)", disable=not self.show_progress)
        try:
            while queue or running:
                while idle and queue:
                    actor, index = idle.pop(), queue.popleft()
                    running[actor.analyse.remote(self.paths[index].absolute(), self.settings)] = (actor, index)
                if not queue:  # nothing left to hand out: idle actors give their CPUs back
                    while idle:
                        self._stop(idle.pop())
                if not running:
                    yield from self._fail(queue, bar, "no Ray worker left to analyse it (all were lost)")
                    break
                done, _ = ray.wait(list(running), num_returns=1, timeout=5.0)
                if not done:
                    starved_since = self._starved(starved_since)
                    if starved_since is not None and time.monotonic() - starved_since > NO_CPU_WAIT_S:
                        queue.extendleft(index for _, index in running.values())
                        running.clear()
                        yield from self._fail(queue, bar, f"the Ray cluster had no CPU for {NO_CPU_WAIT_S:.0f} s")
                    continue
                starved_since = None
                actor, index = running.pop(done[0])
                path = self.paths[index]
                try:
                    analysis = ray.get(done[0])
                except RayTaskError as error:  # the analysis raised: this video's own failure
                    idle.append(actor)
                    cause = error.cause if error.cause is not None else error
                    log.debug("%s: analysis failed on %s", path, self._where(actor), exc_info=error)
                    yield VideoOutcome(path, None, f"{type(cause).__name__}: {cause}")
                except RayError as error:  # the worker died with it (process killed, node lost)
                    if isinstance(error, RayActorError) and error.actor_init_failed:
                        cause = str(error).strip().splitlines()[-1]  # the creation task's exception
                        raise ClusterError(f"a Ray worker cannot build the models: {cause}") from error
                    yield from self._lost(actor, index, losses, queue, bar, error)
                    if spare and len(self.actors) < target:
                        spare -= 1
                        idle.append(self._start())
                    continue
                else:
                    idle.append(actor)
                    yield self._checked(path, analysis, self._where(actor))
                bar.update(1)
        finally:
            bar.close()
            for actor in list(self.actors):
                self._stop(actor)

    def _checked(self, path: Path, analysis: VideoAnalysis, where: str) -> VideoOutcome:
        """Return the outcome of an analysis, refused if its worker's detector is not the driver's."""
        if self.expected_detector is not None and analysis.detector_id != self.expected_detector:
            return VideoOutcome(path, None, f"{where} detected with {analysis.detector_id}, the driver's settings "
                                f"with {self.expected_detector}: install the same models at the same paths on "
                                "every node")
        log.info("analysed %s on %s", path, where)
        return VideoOutcome(path, dataclasses.replace(analysis, path=str(path)))

    def _start(self) -> ActorHandle:
        """Start one actor (it builds and loads its models as it starts), spreading them over the nodes."""
        import ray

        remote = ray.remote(num_cpus=WORKER_CPUS, max_restarts=0, scheduling_strategy="SPREAD")(VideoWorker)
        actor: ActorHandle = remote.remote(*self.models, threads=WORKER_CPUS)
        self.actors[actor] = actor.describe.remote()
        return actor

    def _stop(self, actor: ActorHandle) -> None:
        """Kill an actor, freeing its CPU; one already dead is only forgotten."""
        import ray

        self.actors.pop(actor, None)
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # already gone with its node, or the cluster is: nothing to release
            log.debug("could not kill a Ray worker", exc_info=True)

    def _where(self, actor: ActorHandle) -> str:
        """Return the actor's ``describe()``, for log lines."""
        import ray

        try:
            return str(ray.get(self.actors[actor], timeout=5.0))
        except Exception:  # only for a log line: whatever keeps Ray from saying
            return "a Ray worker"

    def _lost(self, actor: ActorHandle, index: int, losses: collections.Counter[int],
              queue: collections.deque[int], bar: tqdm, error: Exception) -> Iterator[VideoOutcome]:
        """Forget a worker that died with a video: hand the video out again, or give it up."""
        self._stop(actor)
        losses[index] += 1
        path = self.paths[index]
        log.warning("lost the Ray worker analysing %s: %s", path, str(error).splitlines()[0])
        if losses[index] > RETRIES:
            yield VideoOutcome(path, None, f"its Ray worker was lost {losses[index]} times: {error}")
            bar.update(1)
        else:
            queue.appendleft(index)

    def _starved(self, since: float | None) -> float | None:
        """Return since when the cluster has had no CPU for a worker, None while it has one."""
        if _cpus() >= WORKER_CPUS:
            return None
        if since is None:
            log.warning("the Ray cluster has no CPU left: waiting up to %.0f s for a worker node", NO_CPU_WAIT_S)
            return time.monotonic()
        return since

    def _fail(self, queue: collections.deque[int], bar: tqdm, why: str) -> Iterator[VideoOutcome]:
        """Give up every video still queued, with the reason."""
        while queue:
            yield VideoOutcome(self.paths[queue.popleft()], None, why)
            bar.update(1)


def _cpus() -> int:
    """Return the CPUs of the cluster's live nodes."""
    import ray

    return int(ray.cluster_resources().get("CPU", 0))
