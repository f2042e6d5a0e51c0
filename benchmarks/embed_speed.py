"""Measure embedding throughput (images/s) of a re-ID model directory at batch sizes 1 and 64.

Usage: python benchmarks/embed_speed.py [--model DIR] [--runs 5] [--out bench-results/embed_speed.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from embedder.registry import SHIPPED_MODEL_DIR
from embedder.reid_model import ReidEmbedder

log = logging.getLogger(__name__)


def images_per_second(embedder: ReidEmbedder, batch: int, runs: int, min_seconds: float = 1.0) -> list[float]:
    """Return ``runs`` throughput figures, each over repeated ``batch``-image calls lasting ``min_seconds``."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(300, 110, 3), dtype=np.uint8) for _ in range(batch)]
    embedder.embed(images)  # warm-up: traces the forward pass for this batch shape
    figures = []
    for _ in range(runs):
        calls, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < min_seconds or calls == 0:
            embedder.embed(images)
            calls += 1
        figures.append(calls * batch / elapsed)
    return figures


def main() -> None:
    """Parse the options, run the measurements, print them and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL_DIR, help="model directory")
    parser.add_argument("--runs", type=int, default=5, help="runs per batch size (median reported)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--out", type=Path, default=Path("bench-results/embed_speed.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    embedder = ReidEmbedder(args.model)
    results = {}
    for batch in args.batch_sizes:
        embedder.batch_size = batch
        figures = images_per_second(embedder, batch, args.runs)
        results[str(batch)] = {"median_images_per_s": statistics.median(figures), "runs": figures}
        print(f"batch {batch:3d}: {statistics.median(figures):8.1f} images/s "
              f"(median of {args.runs}: {', '.join(f'{f:.1f}' for f in figures)})")
    report = {"model_dir": str(args.model), "model_id": embedder.model_id,
              "input_size": list(embedder.input_size), "cpu_count": os.cpu_count(),
              "machine": platform.processor() or platform.machine(), "batch_sizes": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
