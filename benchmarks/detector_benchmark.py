"""Measure the person detector: time per frame, and recall/precision on the footage ground truth.

Usage: python benchmarks/detector_benchmark.py [--data DIR] [--out FILE.json]
(defaults: ../shared/data beside the project, bench-results/detector.json in it).

Timing uses scikit-image's astronaut resized to each frame size (no data needed); the graph
input is 300x300 whatever the frame size. Accuracy runs on every frame of the two videos in
<data>/footage against their MOT ground truth, counting persons at least --min-height px tall
and matching boxes at IoU >= --iou; without that folder it is skipped, with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import cv2
from skimage import data as skdata

from base.images import BGRImage
from detector.evaluation import MatchCounts, match_frame, read_mot_boxes
from detector.ssdlite import SSDLitePersonDetector

PROJECT = Path(__file__).resolve().parents[1]
VIDEOS = (("pets09-s2l1.avi", "pets09-s2l1.gt.txt"), ("tud-campus.mp4", "tud-campus.gt.txt"))
FRAME_SIZES = ((480, 360), (640, 480))
BATCH_SIZES = (1, 8)
MIN_SCORES = (0.3, 0.5)

T = TypeVar("T")


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=PROJECT / "bench-results" / "detector.json")
    parser.add_argument("--runs", type=int, default=3, help="timing runs; the median is kept")
    parser.add_argument("--frames", type=int, default=16, help="frames per timing run")
    parser.add_argument("--min-height", type=float, default=50.0)
    parser.add_argument("--iou", type=float, default=0.5)
    return parser.parse_args()


def time_per_frame(detector: SSDLitePersonDetector, runs: int, frames: int) -> list[dict[str, Any]]:
    """Time detection per frame for each frame size and batch size, median over ``runs``."""
    astronaut = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    rows = []
    for width, height in FRAME_SIZES:
        images = [cv2.resize(astronaut, (width, height))] * frames
        for batch in BATCH_SIZES:
            detector.batch_size = batch
            detector.detect_batch(images[:batch])  # warm up
            seconds = []
            for _ in range(runs):
                start = time.perf_counter()
                detector.detect_batch(images)
                seconds.append((time.perf_counter() - start) / frames)
            rows.append({"width": width, "height": height, "batch": batch,
                         "ms_per_frame": round(1000 * statistics.median(seconds), 2),
                         "ms_per_frame_runs": [round(1000 * s, 2) for s in seconds]})
            print(f"{width}x{height} batch {batch}: {rows[-1]['ms_per_frame']:.1f} ms/frame "
                  f"(runs {rows[-1]['ms_per_frame_runs']})")
    detector.batch_size = max(BATCH_SIZES)
    return rows


def video_frames(path: Path) -> Iterator[tuple[int, BGRImage]]:
    """Yield (frame number from 1, BGR frame) for every frame of a video."""
    capture = cv2.VideoCapture(str(path))
    try:
        number = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            number += 1
            yield number, frame
    finally:
        capture.release()


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of ``size`` consecutive items, the last one possibly shorter."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def accuracy(detector: SSDLitePersonDetector, footage: Path, min_height: float,
             iou: float) -> list[dict[str, Any]]:
    """Score every frame of each video against its ground truth at each of ``MIN_SCORES``.

    Detection runs once at the lowest score; higher scores filter its boxes, which gives the
    same boxes as detecting at them because suppression only lets better boxes remove worse.
    """
    rows = []
    for video, truth_file in VIDEOS:
        truth = read_mot_boxes(footage / truth_file)
        totals = {score: MatchCounts() for score in MIN_SCORES}
        frames = persons = 0
        start = time.perf_counter()
        for batch in batched(video_frames(footage / video), detector.batch_size):
            found = detector.detect_batch([frame for _, frame in batch], min(MIN_SCORES))
            for (number, _), boxes in zip(batch, found):
                for score in MIN_SCORES:
                    kept = [d for d in boxes if d.score >= score]
                    totals[score] += match_frame(kept, truth.get(number, []),
                                                 iou_threshold=iou, min_height=min_height)
                frames += 1
                persons += sum(h >= min_height for *_, h in truth.get(number, []))
        elapsed = time.perf_counter() - start
        for score, total in totals.items():
            rows.append({"video": video, "frames": frames, "persons": persons,
                         "min_score": score, "recall": round(total.recall, 4),
                         "precision": round(total.precision, 4),
                         "true_positives": total.true_positives,
                         "false_positives": total.false_positives,
                         "false_negatives": total.false_negatives})
            print(f"{video} min_score {score}: recall {total.recall:.3f} "
                  f"precision {total.precision:.3f} (tp {total.true_positives}, "
                  f"fp {total.false_positives}, fn {total.false_negatives}; "
                  f"{frames} frames, {persons} persons >= {min_height:g} px)")
        print(f"{video}: {frames} frames in {elapsed:.1f} s with decoding")
    return rows


def main() -> None:
    """Run the benchmark, print the figures and write them as JSON."""
    args = parse_args()
    import tensorflow as tf

    detector = SSDLitePersonDetector()
    start = time.perf_counter()
    detector.load()
    load_s = time.perf_counter() - start
    print(f"{detector.model_id}: loaded in {load_s:.1f} s")
    results: dict[str, Any] = {
        "model_id": detector.model_id,
        "environment": {"tensorflow": tf.__version__, "opencv": cv2.__version__,
                        "cpus": os.cpu_count(), "machine": platform.machine(),
                        "load_average_1m": round(os.getloadavg()[0], 2)},
        "settings": {"nms_iou": detector.nms_iou, "max_containment": detector.max_containment,
                     "min_height": args.min_height, "iou": args.iou},
        "load_s": round(load_s, 2),
        "timing": time_per_frame(detector, args.runs, args.frames),
    }
    footage = args.data / "footage"
    if footage.is_dir():
        results["accuracy"] = accuracy(detector, footage, args.min_height, args.iou)
    else:
        results["accuracy"] = []
        results["note"] = f"no footage at {footage}: accuracy not measured"
        print(results["note"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
