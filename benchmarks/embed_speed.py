"""Embedding speed and accuracy per runtime and test-time views: what each pass costs and buys.

Usage: python -m benchmarks.embed_speed [--model DIR] [--runs 5] [--batch-sizes 1 64]
       [--set DIR ...] [--report-set DIR ...] [--no-accuracy] [--out bench-results/embed_speed.json]

For each number of passes per crop (1: one centre crop; 2: the same and its mirror image;
4: two centre crops standing for the training zoom, each with its mirror image, as the shipped
model's metadata says), it measures crops/s at each batch size with TensorFlow (the Keras model)
and with OpenVINO (the model directory's IR) computing in float32 and in bfloat16, in the same
run: ``--runs`` rounds, each timing every runtime in turn for at least a second, medians kept;
also CPU milliseconds per crop (``time.process_time``, all threads), which the other work on
a shared machine disturbs far less than wall time. With each OpenVINO precision it reports
rank-1 and mAP on each ``--set`` (default: the cross-domain sets of ../shared/data/multisource/val)
and their mean, and on each ``--report-set`` (default: cuhk03/val).
Figures are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path

import keras
import numpy as np

from embedder.base import Embedder
from embedder.datasets import find_sets
from embedder.evaluation.evaluate import evaluate_folders, mean_figures
from embedder.metadata import ModelMetadata
from embedder.registry import SHIPPED_MODEL_DIR
from embedder.reid_model import MODEL_FILE, KerasEmbedder
from embedder.runtime_model import IR_FILE, RuntimeEmbedder, RuntimeInput

log = logging.getLogger(__name__)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VIEWS = {1: ((0.89,), False), 2: ((0.89,), True), 4: ((0.94, 0.84), True)}
OPENVINO_PRECISIONS = ("f32", "bf16")


def crops_per_second(embedders: dict[str, Embedder], batch: int, runs: int,
                     min_seconds: float = 1.0) -> dict[str, dict[str, float]]:
    """Return per embedder the medians over ``runs`` rounds of crops/s and CPU ms per crop, for
    ``batch``-crop calls; each round times every embedder in turn for ``min_seconds``."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(300, 110, 3), dtype=np.uint8) for _ in range(batch)]
    for embedder in embedders.values():
        embedder.embed(images)  # warm-up: traces or compiles the forward pass for this batch shape
    rates: dict[str, list[float]] = {name: [] for name in embedders}
    cpu_ms: dict[str, list[float]] = {name: [] for name in embedders}
    for _ in range(runs):
        for name, embedder in embedders.items():
            calls, started, cpu = 0, time.perf_counter(), time.process_time()
            while (elapsed := time.perf_counter() - started) < min_seconds or calls == 0:
                embedder.embed(images)
                calls += 1
            rates[name].append(calls * batch / elapsed)
            cpu_ms[name].append((time.process_time() - cpu) * 1000 / (calls * batch))
    return {name: {"crops_per_s": round(statistics.median(rates[name]), 1),
                   "cpu_ms_per_crop": round(statistics.median(cpu_ms[name]), 2)} for name in embedders}


def variants(model_dir: Path, passes: int) -> dict[str, Embedder]:
    """Return the TensorFlow and OpenVINO (f32, bf16) embedders of ``model_dir`` with ``passes`` passes per crop."""
    metadata = ModelMetadata.load(model_dir)
    crops, flip = VIEWS[passes]
    viewed = dataclasses.replace(metadata, center_crops=crops, flip_average=flip,
                                 model_id=f"{metadata.model_id}-{passes}pass")
    model = keras.saving.load_model(metadata.verified(model_dir, MODEL_FILE), compile=False)
    runtime = RuntimeInput.from_dict(metadata.runtime)
    return {"tensorflow": KerasEmbedder(model, viewed, batch_size=64),
            **{f"openvino-{precision}": RuntimeEmbedder(model_dir / IR_FILE, viewed, runtime, batch_size=64,
                                                        precision=precision)
               for precision in OPENVINO_PRECISIONS}}


def main() -> None:
    """Parse the options, run the measurements, print them and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL_DIR, help="model directory with its IR")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median reported)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--passes", type=int, nargs="+", choices=sorted(VIEWS), default=sorted(VIEWS))
    parser.add_argument("--set", dest="sets", type=Path, action="append",
                        help="set or folder of sets averaged [default: ../shared/data/multisource/val]")
    parser.add_argument("--report-set", dest="report_sets", type=Path, action="append",
                        help="set reported apart [default: ../shared/data/cuhk03/val]")
    parser.add_argument("--no-accuracy", dest="accuracy", action="store_false", help="measure speed only")
    parser.add_argument("--out", type=Path, default=Path("bench-results/embed_speed.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    def expand(given: list[Path] | None, default: Path) -> list[Path]:
        roots = given or ([default] if default.is_dir() else [])
        return [found for root in roots for found in find_sets(root)]

    sets = expand(args.sets, DATA / "multisource" / "val")
    report_sets = expand(args.report_sets, DATA / "cuhk03" / "val")

    results = []
    for passes in args.passes:
        embedders = variants(args.model, passes)
        speed = {str(batch): crops_per_second(embedders, batch, args.runs) for batch in args.batch_sizes}
        row: dict = {"passes": passes, "load_average": os.getloadavg(), "speed": speed, "accuracy": {}}
        lines = [f"{passes} pass(es), load {os.getloadavg()[0]:.1f}:"]
        for batch, by_runtime in speed.items():
            lines.append(f"  batch {batch}: " + "  ".join(
                f"{name} {figures['crops_per_s']:.1f} crops/s ({figures['cpu_ms_per_crop']:.1f} CPU ms)"
                for name, figures in by_runtime.items()))
        for precision in OPENVINO_PRECISIONS if args.accuracy else ():
            name = f"openvino-{precision}"
            averaged, apart = (
                [evaluate_folders(embedders[name], folder / "query", folder / "gallery", 0.5, progress=False)
                 for folder in folders] for folders in (sets, report_sets))
            figures: dict = {str(report.query_dir.parent): {"rank1": report.rank1, "mAP": report.mAP}
                             for report in (*averaged, *apart)}
            if averaged:
                figures["mean"] = {key: mean_figures(averaged)[key] for key in ("rank1", "mAP")}
            row["accuracy"][name] = figures
            lines.append(f"  {name} rank-1/mAP: " + "  ".join(
                f"{Path(set_dir).name} {values['rank1']:.3f}/{values['mAP']:.3f}"
                for set_dir, values in figures.items()))
        results.append(row)
        print("\n".join(lines), flush=True)

    report = {"model": str(args.model), "machine": platform.platform(), "cpus": os.cpu_count(),
              "load_average": os.getloadavg(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
