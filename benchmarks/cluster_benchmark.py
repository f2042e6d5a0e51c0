"""Measure footage analysis on a local Ray cluster of 1 and 2 worker nodes: the scaling figure.

Usage: python -m benchmarks.cluster_benchmark [--data DIR] [--nodes 1 2] [--clips 4] [--runs 1]
       [--out bench-results/cluster.json]
(defaults: ../shared/data beside the project; the real detector and the shipped embedder, as
``reid index-footage`` uses them with the default settings.)

PETS09-S2L1 (795 frames, 10 fps, 480x360) is cut into ``--clips`` equal clips (MJPG AVI), so that
there is work for every worker. For each node count a fresh local cluster is started (a head
without CPUs and that many nodes of one CPU each, on 127.0.0.1) and the clips are analysed on it
with ``footage.cluster.analyse_videos_on_ray``, as ``reid index-footage --ray`` does; storing the
results is left out (the driver stores a video in well under a second).

Figures, per node count (median over ``--runs``, the node counts taking turns):
- wall_s: from connecting to the last result, the workers' model loading included;
- real_time_factor: seconds of video per second of wall time;
- analysis_s: the sum of the per-video analysis times (models already loaded), and
  per_worker_rtf: video seconds per analysis second, the steady-state speed of one worker;
- worker_cpu_s: CPU time the workers used (sampled from /proc, model loading included), and
  video_s_per_cpu_s: seconds of video per CPU second, which other work on the machine barely
  changes: the basis for estimating other machines;
- load_average: the machine's 1-minute load average after the run (on 2 cores, above 2 means
  that other work shared the cores).
It also measures the driver's SHA-256 rate (every file under the paths is hashed each run to
skip the videos already indexed). Nothing else should run meanwhile; say what did if it did.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2

from embedder.registry import default_embedder_spec
from footage.cluster import analyse_videos_on_ray
from footage.discovery import content_hash
from footage.settings import FootageSettings
from web.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NODE_MEMORY = 200 * 1024 * 1024


def cut_clips(video: Path, count: int, folder: Path) -> list[Path]:
    """Cut ``video`` into ``count`` consecutive clips of equal length (MJPG AVI) in ``folder``."""
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    per_clip = frames // count
    clips = []
    for k in range(count):
        path = folder / f"{video.stem}-part{k}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
        for _ in range(per_clip):
            ok, frame = capture.read()
            if not ok:
                break
            writer.write(frame)
        writer.release()
        clips.append(path)
    capture.release()
    return clips


class WorkerCpu:
    """Samples the CPU time (user + system) of the VideoWorker processes on this machine from /proc."""

    def __init__(self, every_s: float = 0.25) -> None:
        self.every_s = every_s
        self.seconds: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WorkerCpu:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def _run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self._stop.wait(self.every_s):
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    if not (proc / "cmdline").read_bytes().startswith(b"ray::VideoWorker"):
                        continue
                    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:  # gone meanwhile
                    continue
                self.seconds[int(proc.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime


def run_on_cluster(nodes: int, clips: list[Path], settings: FootageSettings, detector: str,
                   detector_options: dict[str, Any], embedder: str) -> dict[str, float]:
    """Start a local cluster of ``nodes`` one-CPU nodes, analyse the clips on it, return the figures."""
    import ray._private.ray_constants as constants
    from ray.cluster_utils import Cluster

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # everything on loopback
    constants.ENABLE_RAY_CLUSTER = False
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": NODE_MEMORY, "node_ip_address": "127.0.0.1",
        "include_dashboard": False})
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=1, object_store_memory=NODE_MEMORY, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        began = time.perf_counter()
        with WorkerCpu() as cpu:
            outcomes = list(analyse_videos_on_ray(clips, settings, address=cluster.address, detector=detector,
                                                  embedder=embedder, detector_options=detector_options,
                                                  show_progress=False))
        wall = time.perf_counter() - began
    finally:
        cluster.shutdown()
    failed = [f"{o.path.name}: {o.error}" for o in outcomes if o.analysis is None]
    assert not failed, failed
    analyses = [o.analysis for o in outcomes if o.analysis is not None]
    video_s = sum(a.duration_s for a in analyses)
    analysis_s = sum(a.seconds for a in analyses)
    return {"wall_s": round(wall, 1), "video_s": round(video_s, 1), "real_time_factor": round(video_s / wall, 3),
            "analysis_s": round(analysis_s, 1), "per_worker_rtf": round(video_s / analysis_s, 3),
            "worker_cpu_s": round(cpu.total, 1), "video_s_per_cpu_s": round(video_s / cpu.total, 3),
            "tracks": sum(len(a.tracks) for a in analyses)}


def hash_rate(path: Path, repeats: int = 5) -> float:
    """Return the driver's SHA-256 rate over ``path`` in MB/s (file in the page cache)."""
    content_hash(path)
    began = time.perf_counter()
    for _ in range(repeats):
        content_hash(path)
    return repeats * path.stat().st_size / (time.perf_counter() - began) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench-results" / "cluster.json")
    args = parser.parse_args()
    video = args.data / "footage" / "pets09-s2l1.avi"
    if not video.is_file():
        raise SystemExit(f"footage not found at {video} (needs ../shared/data)")
    defaults = Settings()
    settings = FootageSettings(tile_every=defaults.footage_tile_every)
    embedder = defaults.embedder or default_embedder_spec()
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                                           "load_average_at_start": os.getloadavg()},
                               "detector": defaults.detector, "embedder": embedder,
                               "settings_fingerprint": settings.fingerprint(), "nodes": {}}
    with tempfile.TemporaryDirectory() as folder:
        clips = cut_clips(video, args.clips, Path(folder))
        results["clips"] = [clip.name for clip in clips]
        results["driver_sha256_mb_per_s"] = round(hash_rate(clips[0]), 1)
        runs: dict[int, list[dict[str, float]]] = {nodes: [] for nodes in args.nodes}
        for _ in range(args.runs):  # interleaved, so that a change in the machine's load hits all alike
            for nodes in args.nodes:
                run = run_on_cluster(nodes, clips, settings, defaults.detector, defaults.detector_options(), embedder)
                run["load_average"] = round(os.getloadavg()[0], 2)
                runs[nodes].append(run)
                print(f"{nodes} node(s): {json.dumps(run)}", flush=True)
        for nodes, made in runs.items():
            median = {key: statistics.median(run[key] for run in made) for key in made[0]}
            results["nodes"][str(nodes)] = {"median": median, "runs": made}
            print(f"{nodes} node(s), median of {len(made)}: {json.dumps(median)}", flush=True)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
