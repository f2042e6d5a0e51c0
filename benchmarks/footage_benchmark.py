"""Measure footage indexing on the recordings with ground truth: detection, tracks and speed.

Usage: python -m benchmarks.footage_benchmark [--data DIR] [--out FILE.json] [--runs N]
       [--model DIR] [--threshold T ...] [--set NAME=VALUE ...] [--detector NAME]
       [--tile-size PX] [--scale N] [--repeat N]
(defaults: ../shared/data beside the project, bench-results/footage.json in it, 3 runs, the
default detector; ``--set`` overrides a ``FootageSettings`` field, e.g. ``--set analysis_fps=3``
or ``--set tile_every=1``; ``--scale 3`` measures copies of the videos upscaled 3 times
(bilinear; 480x360 -> 1440x1080), their ground truth and the 50-px height scaled alike;
``--repeat 4`` copies each video played 4 times over, its ground truth alike: the cost of a
longer video, where what each video costs once counts less).

Definitions, per video:
- Detection: on every sampled frame (analysed, or skipped as static), the kept crops are
  matched to the ground truth greedily by score at IoU >= 0.5; persons shorter than 50 px
  are not counted (``detector.evaluation.match_frame``). Recall = TP / (TP + FN),
  precision = TP / (TP + FP); also given at IoU >= 0.3, which forgives loose boxes.
- A kept detection's identity: the ground-truth box of its frame it matches in that same
  greedy matching (any height), else none.
- A track's identity is the majority identity of its labelled detections. The track *mixes*
  identities when that majority is under 80% of its labelled detections, and is *unmatched*
  when none of its detections is labelled.
- An identity is *found* when it is the majority identity of a track, and *split* when it
  is the majority identity of two or more tracks (a person leaving the view and coming back
  is split too). *Visible* identities have a box >= 50 px tall in some sampled frame.
- Real-time factor: video duration / analysis wall time, with the models loaded and warmed
  up; the median of ``--runs`` runs. The CPU real-time factor divides by the process's CPU
  seconds (all threads) instead: what one free core would manage, much less sensitive to other
  work on the machine. Time per stage (``footage.stages``: decode, motion, detect, embed,
  track), wall and CPU, medians of the runs; *store* is recording the analysis in a gallery
  (content hash, SQL, crops, index), timed once in the footage search below.

- Footage search, per ground-truth identity: the query is its box in the first frame where
  it is at least 50 px tall and wholly inside the frame. The analysis is stored in a
  temporary gallery (SQLite + FAISS, as ``reid index-footage`` stores it) and searched with
  ``Gallery.search`` at the model's calibrated threshold. Recall is the fraction of the
  identity's ground-truth frames inside the returned sightings' frame ranges; precision is
  the fraction of returned sightings whose track's majority identity is the query's.
  Averages are over identities (precision over identities with at least one sighting).

Add figures by appending a function (analysis, truth) -> dict to ``FIGURES``; its result is
printed and stored under its name. ``--model`` names the embedder, ``--threshold`` adds search
thresholds besides its calibrated one.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from base.boxes import iou_matrix
from detector.base import Detection, Detector
from detector.evaluation import Box, MatchCounts, match_frame
from detector.registry import DEFAULT_DETECTOR, build_detector
from embedder.base import Embedder
from embedder.registry import build_embedder, default_embedder_spec
from footage.analysis import Observation, VideoAnalysis, analyse_video
from footage.sampling import read_frame, sample_indices
from footage.settings import FootageSettings
from footage.stages import STAGES

PROJECT = Path(__file__).resolve().parents[1]
VIDEOS = (("pets09-s2l1.avi", "pets09-s2l1.gt.txt"), ("tud-campus.mp4", "tud-campus.gt.txt"))
MIN_HEIGHT = 50.0
IOU = 0.5
LOOSE_IOU = 0.3
MIX_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """MOT ground truth by frame index from 0: (identity, (x, y, w, h)) pairs."""

    boxes: dict[int, list[tuple[int, Box]]]
    sampled: list[int]  # the frame indices the analysis sampled
    min_height: float = MIN_HEIGHT  # persons shorter than this are not counted


Figures = Callable[[VideoAnalysis, GroundTruth], dict[str, Any]]


def read_mot_identities(path: Path) -> dict[int, list[tuple[int, Box]]]:
    """Read MOT lines ``frame,id,x,y,w,h,...`` into frame index (from 0) to (id, box) pairs."""
    boxes: dict[int, list[tuple[int, Box]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        if line.strip():
            fields = line.split(",")
            x, y, w, h = (float(v) for v in fields[2:6])
            boxes[int(float(fields[0])) - 1].append((int(float(fields[1])), (x, y, w, h)))
    return dict(boxes)


def by_frame(analysis: VideoAnalysis) -> dict[int, list[int]]:
    """Return frame index to the indices of its observations."""
    frames: dict[int, list[int]] = defaultdict(list)
    for i, observation in enumerate(analysis.observations):
        frames[observation.frame].append(i)
    return frames


def _detection(observation: Observation) -> Detection:
    """Turn an observation back into a detection."""
    return Detection(*observation.bbox, observation.quality.score)


def detection_figures(analysis: VideoAnalysis, truth: GroundTruth) -> dict[str, Any]:
    """Score the kept crops of every sampled frame against the ground truth.

    Besides the figures at IoU 0.5, recall and precision at ``LOOSE_IOU`` tell boxes that
    are merely loose (small persons) from boxes where there is nobody.
    """
    frames = by_frame(analysis)
    totals = {IOU: MatchCounts(), LOOSE_IOU: MatchCounts()}
    for index in truth.sampled:
        found = [_detection(analysis.observations[i]) for i in frames.get(index, [])]
        boxes = [box for _, box in truth.boxes.get(index, [])]
        for iou in totals:
            totals[iou] += match_frame(found, boxes, iou_threshold=iou, min_height=truth.min_height)
    total, loose = totals[IOU], totals[LOOSE_IOU]
    return {"recall": round(total.recall, 4), "precision": round(total.precision, 4),
            "true_positives": total.true_positives, "false_positives": total.false_positives,
            "false_negatives": total.false_negatives,
            f"recall_at_iou_{LOOSE_IOU}": round(loose.recall, 4),
            f"precision_at_iou_{LOOSE_IOU}": round(loose.precision, 4)}


def identities(analysis: VideoAnalysis, truth: GroundTruth) -> list[int | None]:
    """Label each observation with the identity of the truth box it matches, if any."""
    labels: list[int | None] = [None] * len(analysis.observations)
    for index, members in by_frame(analysis).items():
        people = truth.boxes.get(index, [])
        if not people:
            continue
        ordered = sorted(members, key=lambda i: -analysis.observations[i].quality.score)
        ious = iou_matrix(np.array([analysis.observations[i].bbox for i in ordered]),
                          np.array([box for _, box in people]))
        taken = np.zeros(len(people), dtype=bool)
        for i, row in zip(ordered, ious):
            candidates = np.where(taken, -1.0, row)
            best = int(np.argmax(candidates))
            if candidates[best] >= IOU:
                taken[best] = True
                labels[i] = people[best][0]
    return labels


def track_label_counts(analysis: VideoAnalysis, truth: GroundTruth) -> list[Counter[int]]:
    """Count, per track, the identities of its labelled detections."""
    per_track: list[Counter[int]] = [Counter() for _ in analysis.tracks]
    for observation, label in zip(analysis.observations, identities(analysis, truth)):
        if observation.track >= 0 and label is not None:
            per_track[observation.track][label] += 1
    return per_track


def track_figures(analysis: VideoAnalysis, truth: GroundTruth) -> dict[str, Any]:
    """Count identities split over tracks and tracks mixing identities."""
    per_track = track_label_counts(analysis, truth)
    majority = [counts.most_common(1)[0] if counts else None for counts in per_track]
    mixed = sum(1 for counts, top in zip(per_track, majority)
                if top is not None and top[1] < MIX_SHARE * sum(counts.values()))
    tracks_per_identity = Counter(top[0] for top in majority if top is not None)
    visible = {person for index in truth.sampled for person, box in truth.boxes.get(index, [])
               if box[3] >= truth.min_height}
    return {"tracks": len(analysis.tracks), "tracks_dropped_short": analysis.tracks_dropped_short,
            "identities_visible": len(visible), "identities_found": len(tracks_per_identity),
            "identities_split": sum(1 for n in tracks_per_identity.values() if n >= 2),
            "tracks_per_found_identity": round(
                len(analysis.tracks) / max(1, len(tracks_per_identity)), 2),
            "tracks_mixed": mixed, "tracks_unmatched": sum(t is None for t in majority)}


def track_identities(analysis: VideoAnalysis, truth: GroundTruth) -> list[int | None]:
    """Return each track's majority identity (None when none of its detections is labelled)."""
    return [counts.most_common(1)[0][0] if counts else None
            for counts in track_label_counts(analysis, truth)]


@dataclass
class SearchOutcomes:
    """What the footage searches at one threshold returned, one query at a time."""

    recalls: list[float] = dataclasses.field(default_factory=list)
    precisions: list[float] = dataclasses.field(default_factory=list)
    returned: list[int] = dataclasses.field(default_factory=list)

    def add(self, recall: float, hits_correct: list[bool]) -> None:
        """Record one query's recall and whether each returned sighting was the query's person."""
        self.recalls.append(recall)
        self.returned.append(len(hits_correct))
        if hits_correct:
            self.precisions.append(sum(hits_correct) / len(hits_correct))

    def summary(self, threshold: float) -> dict[str, Any]:
        """Return mean recall, mean precision (over queries with sightings) and sightings per query."""
        def mean(values: Sequence[float], digits: int = 4) -> float | None:
            return round(float(np.mean(values)), digits) if values else None
        return {"threshold": round(threshold, 4), "recall": mean(self.recalls),
                "precision": mean(self.precisions), "identities_with_sightings": len(self.precisions),
                "sightings_per_query": mean(self.returned, digits=2)}


def search_figures(analysis: VideoAnalysis, truth: GroundTruth, embedder: Embedder,
                   other_thresholds: Sequence[float] = ()) -> dict[str, Any]:
    """Store the analysis in a temporary gallery and search it with one crop per identity, at the
    model's calibrated threshold (the figures' top level) and at each of ``other_thresholds``.

    Each crop is searched once, at the lowest threshold; a higher one keeps the sightings scoring
    at least it, which is what searching at it returns (sightings come best first)."""
    import tempfile
    from datetime import UTC, datetime

    from detector.whole_image import WholeImageDetector
    from footage.discovery import content_hash
    from gallery.db import make_engine, make_session_factory, sqlite_url
    from gallery.schema import upgrade
    from gallery.service import Gallery

    threshold = embedder.calibrated_threshold()
    assert threshold is not None, f"{embedder.model_id} has no calibrated threshold"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    owner = {(t.start_frame, t.end_frame): label
             for t, label in zip(analysis.tracks, track_identities(analysis, truth))}
    frames_of: dict[int, set[int]] = defaultdict(set)
    queries: dict[int, tuple[int, Box]] = {}
    for index in sorted(truth.boxes):
        for person, (x, y, w, h) in truth.boxes[index]:
            frames_of[person].add(index)
            inside = x >= 0 and y >= 0 and x + w <= analysis.width and y + h <= analysis.height
            if person not in queries and h >= truth.min_height and inside:
                queries[person] = (index, (x, y, w, h))
    outcomes: dict[float, SearchOutcomes] = {t: SearchOutcomes() for t in (threshold, *other_thresholds)}
    with tempfile.TemporaryDirectory() as tmp:
        url = sqlite_url(Path(tmp) / "bench.db")
        upgrade(url)
        engine = make_engine(url)
        gallery = Gallery(Path(tmp), embedder, WholeImageDetector(), link_threshold=threshold,
                          sightings_per_query=100)
        with make_session_factory(engine)() as session:
            wall, cpu = time.perf_counter(), time.process_time()
            gallery.sightings.record(session, analysis, camera="bench",
                                     sha256=content_hash(Path(analysis.path)), recorded_start=start)
            store = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
            for person, (index, (x, y, w, h)) in sorted(queries.items()):
                crop = read_frame(Path(analysis.path), index)[int(y):int(y + h), int(x):int(x + w)]
                hits = gallery.search(session, crop, top_k=1, threshold=min(outcomes)).results[0].sightings
                for t, outcome in outcomes.items():
                    spans = [(round((hit.start - start).total_seconds() * analysis.fps),
                              round((hit.end - start).total_seconds() * analysis.fps))
                             for hit in hits if hit.score >= t]
                    covered = {f for f in frames_of[person] if any(a <= f <= b for a, b in spans)}
                    outcome.add(len(covered) / len(frames_of[person]),
                                [owner.get(span) == person for span in spans])
        engine.dispose()
    figures = {"identities_queried": len(queries), **outcomes[threshold].summary(threshold),
               "store_seconds": {k: round(v, 4) for k, v in store.items()}}
    if other_thresholds:
        figures["other_thresholds"] = [outcomes[t].summary(t) for t in other_thresholds]
    return figures


FIGURES: dict[str, Figures] = {"detection": detection_figures, "tracks": track_figures}


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=PROJECT / "bench-results" / "footage.json")
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the median is kept")
    parser.add_argument("--model", default=default_embedder_spec(),
                        help="embedder: a model directory (default: the shipped model)")
    parser.add_argument("--threshold", dest="thresholds", type=float, action="append", default=[],
                        help="also search at this threshold (repeatable), besides the calibrated one")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="NAME=VALUE", help="override a FootageSettings field")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help="detector registry name")
    parser.add_argument("--tile-size", type=int, default=None,
                        help="detector tile width in pixels [default: the detector's own]")
    parser.add_argument("--scale", type=int, default=1, help="upscale the videos this many times")
    parser.add_argument("--repeat", type=int, default=1, help="play each video this many times over")
    parser.add_argument("--threads", type=int, default=None,
                        help="OpenVINO threads per model [default: all cores]; 1 as in each of "
                             "`reid index-footage`'s one-per-core workers")
    return parser.parse_args()


def rewritten_footage(footage: Path, scale: int, repeat: int, out: Path) -> Path:
    """Write each video upscaled ``scale`` times (bilinear) and played ``repeat`` times over to ``out``,
    its ground truth scaled and repeated alike."""
    out.mkdir(parents=True, exist_ok=True)
    for video, truth_file in VIDEOS:
        capture = cv2.VideoCapture(str(footage / video))
        fps = capture.get(cv2.CAP_PROP_FPS)
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) * scale,
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) * scale)
        capture.release()
        codec = "mp4v" if video.endswith(".mp4") else "MJPG"
        writer = cv2.VideoWriter(str(out / video), cv2.VideoWriter.fourcc(*codec), fps, size)
        if not writer.isOpened():
            raise SystemExit(f"cannot write {out / video}")
        for _ in range(repeat):
            frames = 0
            capture = cv2.VideoCapture(str(footage / video))
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
                frames += 1
            capture.release()
        writer.release()
        truth = [line.split(",") for line in (footage / truth_file).read_text().splitlines() if line.strip()]
        lines = [",".join([str(int(float(fields[0])) + copy * frames), fields[1],
                           *(f"{float(v) * scale:g}" for v in fields[2:6]), *fields[6:]])
                 for copy in range(repeat) for fields in truth]
        (out / truth_file).write_text("\n".join(lines) + "\n")
    return out


def settings_from(overrides: list[str]) -> FootageSettings:
    """Build settings from the defaults and ``NAME=VALUE`` overrides.

    Raises:
        SystemExit: an override is malformed or names no field.
    """
    defaults = FootageSettings()
    names = {f.name for f in dataclasses.fields(FootageSettings)}
    changes: dict[str, Any] = {}
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in names or not value:
            raise SystemExit(f"--set expects NAME=VALUE with NAME one of {sorted(names)}, "
                             f"got {item!r}")
        changes[name] = type(getattr(defaults, name))(value)
    return dataclasses.replace(defaults, **changes)


def load_models(embedder_spec: str, detector: str = DEFAULT_DETECTOR, tile_size: int | None = None,
                threads: int | None = None) -> tuple[Detector, Embedder]:
    """Return the detector named ``detector`` and the embedder named ``embedder_spec``, ``threads`` each if given."""
    options = {} if threads is None else {"threads": threads}
    return build_detector(detector, tile_size=tile_size, **options), build_embedder(embedder_spec, **options)


def main() -> None:
    """Run the benchmark, print a table and write the figures as JSON."""
    args = parse_args()
    footage = args.data / "footage"
    if not footage.is_dir():
        raise SystemExit(f"no footage at {footage}: nothing to measure")
    settings = settings_from(args.overrides)
    if (args.scale, args.repeat) != (1, 1):
        import tempfile

        footage = rewritten_footage(footage, args.scale, args.repeat, Path(tempfile.mkdtemp(prefix="footage-x")))
    detector, embedder = load_models(args.model, args.detector, args.tile_size, args.threads)
    detector.detect(np.zeros((360, 480, 3), dtype=np.uint8))  # load and warm up both models
    embedder.embed([np.zeros((128, 64, 3), dtype=np.uint8)])
    measures = {**FIGURES, "search": functools.partial(search_figures, embedder=embedder,
                                                         other_thresholds=args.thresholds)}
    rows = []
    for video, truth_file in VIDEOS:
        runs = [analyse_video(footage / video, settings, detector, embedder)
                for _ in range(args.runs)]
        analysis = runs[0]
        truth = GroundTruth(read_mot_identities(footage / truth_file),
                            sample_indices(analysis.fps, settings.analysis_fps,
                                           analysis.frames_read), MIN_HEIGHT * args.scale)
        row: dict[str, Any] = {
            "video": video, "width": analysis.width, "height": analysis.height,
            "windows_when_tiled": len(detector.windows(analysis.width, analysis.height)),
            "duration_s": round(analysis.duration_s, 2),
            "frames": analysis.frames_read, "fps": analysis.fps,
            "frames_analysed": analysis.frames_analysed, "frames_static": analysis.frames_static,
            "detections": analysis.detections, "crops_kept": analysis.crops_kept,
            "crops_dropped": analysis.crops_dropped,
            "realtime_factor": round(statistics.median(r.realtime_factor for r in runs), 2),
            "cpu_realtime_factor": round(statistics.median(r.cpu_realtime_factor for r in runs), 2),
            "seconds_runs": [round(r.seconds, 3) for r in runs],
            "cpu_seconds_runs": [round(r.cpu_seconds, 3) for r in runs],
            "stages": {stage: {"wall_s": round(statistics.median(r.stage_seconds[stage] for r in runs), 4),
                               "cpu_s": round(statistics.median(r.stage_cpu_seconds[stage] for r in runs), 4)}
                       for stage in STAGES},
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
        row.update({name: figures(analysis, truth) for name, figures in measures.items()})
        row["stages"]["store"] = row["search"].pop("store_seconds")
        rows.append(row)
    print_table(rows, [name for name in measures if name not in {"detection", "tracks"}])
    results = {
        "detector": detector.model_id, "embedder": embedder.model_id, "scale": args.scale,
        "repeat": args.repeat,
        "settings": dataclasses.asdict(settings), "fingerprint": settings.fingerprint(),
        "environment": {"opencv": cv2.__version__, "cpus": os.cpu_count(),
                        "machine": platform.machine(),
                        "load_average_1m": round(os.getloadavg()[0], 2),
                        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        "definitions": {"min_height": MIN_HEIGHT * args.scale, "iou": IOU, "loose_iou": LOOSE_IOU,
                        "mix_share": MIX_SHARE},
        "videos": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


def print_table(rows: list[dict[str, Any]], extra_figures: Sequence[str]) -> None:
    """Print one line of headline figures per video, then the figures named ``extra_figures``."""
    header = (f"{'video':<17}{'frames':>7}{'analysed':>9}{'static':>7}{'recall':>8}"
              f"{'precision':>10}{'tracks':>7}{'ids':>8}{'split':>6}{'mixed':>6}"
              f"{'unmatched':>10}{'RTF':>7}")
    print(header)
    for row in rows:
        d, t = row["detection"], row["tracks"]
        print(f"{row['video']:<17}{row['frames']:>7}{row['frames_analysed']:>9}"
              f"{row['frames_static']:>7}{d['recall']:>8.3f}{d['precision']:>10.3f}"
              f"{t['tracks']:>7}{t['identities_found']:>4}/{t['identities_visible']:<3}"
              f"{t['identities_split']:>6}{t['tracks_mixed']:>6}{t['tracks_unmatched']:>10}"
              f"{row['realtime_factor']:>6.1f}x")
        stages = "  ".join(f"{stage} {t['wall_s']:.2f}/{t['cpu_s']:.2f}" for stage, t in row["stages"].items())
        print(f"  seconds per stage, wall/CPU: {stages}; CPU real-time factor {row['cpu_realtime_factor']:.1f}x"
              f" (load {row['load_average_1m']})")
        for name in extra_figures:
            print(f"  {name}: {row[name]}")


if __name__ == "__main__":
    main()
