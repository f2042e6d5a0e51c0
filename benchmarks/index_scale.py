"""The vector index at 100k, 1M (and, once, 10M) vectors: build, memory, search, recall, writes.

Usage: python -m benchmarks.index_scale [--sizes 100000 1000000] [--ten-million]
       [--compare/--no-compare] [--compare-max 1000000] [--hnsw-max 1000000] [--writes 30]
       [--search-threads 1] [--dir DIR] [--out bench-results/index_scale.json]

The 10M run takes about 12 GB at its peak (the vectors, then the index and a second copy
loaded from its files) and here, on 2 busy cores, about 20 minutes: run it by hand, not in CI.

The vectors are synthetic and shaped like a re-ID gallery: identities x views, 128-d, unit
length. Each identity has a centre (a shared mean direction, a 32-dimensional random part and
isotropic noise), each of its 8 views the centre plus noise: the cosine of two views of one
identity is about 0.76, of two identities 0.11 on average (0.37 at the 99th percentile).
Queries are fresh views of random identities; recall@10 is measured against exact search.

For each size it measures ``gallery.vector_index.VectorIndex`` as the service uses it (exact
below ``ANN_THRESHOLD``, IVF-Flat above): the build (training, adding, the snapshot written),
the memory it takes (resident set growth) and the snapshot's size, single-query latency p50/p99
at k=10, recall@10, a cold load from the files, and the latency of one enroll (4 vectors
appended, then the generation mark) and one delete (erased from the files, appended, marked),
median and max over repeats, with a second copy catching up after each write. With
``--compare`` it also measures the candidate layouts directly in FAISS at that size: IVF-Flat
and IVF-SQ8 over an nprobe sweep and (up to ``--hnsw-max`` vectors) HNSW32 over an efSearch
sweep; HNSW cannot remove vectors, which rules it out here unless it is much better.
Figures are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

from gallery.vector_index import ANN_THRESHOLD, NPROBE, VectorIndex, nlist_for, nprobe_for, use_threads

log = logging.getLogger(__name__)
PROJECT = Path(__file__).resolve().parents[1]
DIM, VIEWS, RANK = 128, 8, 32
QUERIES, LATENCY_QUERIES, K = 1000, 300, 10
SEARCH_THREADS = 1  # FAISS threads while searching and writing, as in a server worker (--search-threads)
_serving = {"threads": SEARCH_THREADS}


@contextlib.contextmanager
def serving_threads() -> Iterator[None]:
    """Use the server's FAISS thread count inside (builds outside use them all, as at start-up)."""
    default = faiss.omp_get_max_threads()
    use_threads(_serving["threads"])
    try:
        yield
    finally:
        use_threads(default)


def synthetic(count: int, seed: int = 0, queries: int = QUERIES
              ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Return ``count`` gallery vectors (identities x ``VIEWS`` views) and ``queries`` fresh views, unit length."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(RANK, DIM)).astype(np.float32) / np.sqrt(RANK * DIM)
    mean = rng.normal(size=DIM).astype(np.float32)
    mean *= 0.5 / np.linalg.norm(mean)
    identities = -(-count // VIEWS)

    def centres(first: int, number: int) -> NDArray[np.float32]:
        local = np.random.default_rng([seed, 1, first])
        made = (local.normal(size=(number, RANK)).astype(np.float32) @ basis
                + local.normal(size=(number, DIM)).astype(np.float32) * 0.06 + mean)
        return made / np.linalg.norm(made, axis=1, keepdims=True)

    def views(of: NDArray[np.float32], salt: int) -> NDArray[np.float32]:
        local = np.random.default_rng([seed, 2, salt])
        made = of + local.normal(size=of.shape).astype(np.float32) * 0.05
        return made / np.linalg.norm(made, axis=1, keepdims=True)

    vectors = np.empty((count, DIM), np.float32)
    picked = np.random.default_rng([seed, 3]).integers(0, identities, queries)
    asked = np.empty((queries, DIM), np.float32)
    step = 100_000  # identities per chunk: bounded temporary memory at 10M
    for first in range(0, identities, step):
        number = min(step, identities - first)
        made = centres(first, number)
        rows = slice(first * VIEWS, min(count, (first + number) * VIEWS))
        vectors[rows] = views(np.repeat(made, VIEWS, axis=0), first)[:rows.stop - rows.start]
        here = (picked >= first) & (picked < first + number)
        asked[here] = made[picked[here] - first]
    return vectors, views(asked, 1 << 40)  # a salt no chunk uses


def exact_top(vectors: NDArray[np.float32], queries: NDArray[np.float32], k: int = K) -> NDArray[np.int64]:
    """Return the exact top-k rows for each query (brute force, in slices to bound memory)."""
    best_scores = np.full((len(queries), k), -np.inf, np.float32)
    best_ids = np.full((len(queries), k), -1, np.int64)
    step = 1_000_000
    for start in range(0, len(vectors), step):
        flat = faiss.IndexFlatIP(DIM)
        flat.add(vectors[start:start + step])
        scores, ids = flat.search(queries, k)
        scores_all = np.concatenate([best_scores, scores], axis=1)
        ids_all = np.concatenate([best_ids, ids + start], axis=1)
        order = np.argsort(-scores_all, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(scores_all, order, axis=1)
        best_ids = np.take_along_axis(ids_all, order, axis=1)
    return best_ids


def recall(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    """Return recall@k: the share of each query's true top-k found in its top-k, averaged."""
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / truth.shape[1] for f, t in zip(found, truth)]))


def latency(search: Callable[[NDArray[np.float32]], object], queries: NDArray[np.float32]) -> dict[str, float]:
    """Return p50/p99 milliseconds of single-query searches."""
    times = []
    with serving_threads():
        search(queries[:1])
        for row in range(len(queries)):
            started = time.perf_counter()
            search(queries[row:row + 1])
            times.append((time.perf_counter() - started) * 1e3)
    return {"p50_ms": round(float(np.percentile(times, 50)), 3), "p99_ms": round(float(np.percentile(times, 99)), 3)}


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def index_mb(index: Any) -> float:
    """Return the size of an index serialized, in MiB: about what it holds in memory."""
    return float(faiss.serialize_index(index).nbytes / 2**20)


def compare_layouts(vectors: NDArray[np.float32], queries: NDArray[np.float32], truth: NDArray[np.int64],
                    hnsw_max: int) -> list[dict[str, Any]]:
    """Measure IVF-Flat, IVF-SQ8 and HNSW32 directly in FAISS over their search-breadth settings."""
    results: list[dict[str, Any]] = []
    count, nlist = len(vectors), nlist_for(len(vectors))
    sample = vectors[np.sort(np.random.default_rng(0).choice(count, min(count, 64 * nlist), replace=False))]
    ids = np.arange(count, dtype=np.int64)
    for name in ("IVF-Flat", "IVF-SQ8"):
        quantizer = faiss.IndexFlatIP(DIM)
        index: Any = (faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT) if name == "IVF-Flat"
                      else faiss.IndexIVFScalarQuantizer(quantizer, DIM, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                         faiss.METRIC_INNER_PRODUCT))
        index.cp.niter, index.cp.max_points_per_centroid = 10, 64
        started = time.perf_counter()
        index.train(sample)
        index.add_with_ids(vectors, ids)
        built, memory = time.perf_counter() - started, index_mb(index)
        for nprobe in (16, 32, 64, 128, 256):
            if nprobe > nlist:
                break
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            found = index.search(queries, K, params=params)[1]
            row = {"layout": f"{name} nlist={nlist}", "setting": f"nprobe={nprobe}", "build_s": round(built, 1),
                   "memory_mb": round(memory), "recall@10": round(recall(found, truth), 4),
                   **latency(lambda q, p=params, i=index: i.search(q, K, params=p), queries[:LATENCY_QUERIES]),
                   "removals": "yes"}
            results.append(row)
            print(f"    {row}", flush=True)
            if row["recall@10"] >= 0.99:
                break
        del index
    if count <= hnsw_max:
        hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 40
        started = time.perf_counter()
        hnsw.add(vectors)
        built, memory = time.perf_counter() - started, index_mb(hnsw)
        for ef in (16, 32, 64, 128):
            params = faiss.SearchParametersHNSW(efSearch=ef)
            found = hnsw.search(queries, K, params=params)[1]
            row = {"layout": "HNSW32", "setting": f"efSearch={ef}", "build_s": round(built, 1),
                   "memory_mb": round(memory), "recall@10": round(recall(found, truth), 4),
                   **latency(lambda q, p=params: hnsw.search(q, K, params=p), queries[:LATENCY_QUERIES]),
                   "removals": "no"}
            results.append(row)
            print(f"    {row}", flush=True)
            if row["recall@10"] >= 0.99:
                break
    return results


def measure_service_index(data: list[NDArray[np.float32]], queries: NDArray[np.float32], truth: NDArray[np.int64],
                          writes: int, directory: Path) -> dict[str, Any]:
    """Measure ``VectorIndex`` as the service uses it: build, memory, search, load, enroll and delete.

    ``data`` holds the vectors, taken out once built (at 10M they and two copies would not fit).
    """
    count = len(data[0])
    ids = np.arange(1, count + 1, dtype=np.int64)  # database ids start at 1
    index = VectorIndex(directory, "gallery", "bench", DIM)
    before, started = rss_mb(), time.perf_counter()
    index.rebuild(ids, data[0])
    built, memory = time.perf_counter() - started, rss_mb() - before
    data.clear()
    index.mark(1)
    found = index.search(queries, K)[1]
    figures: dict[str, Any] = {
        "vectors": count, "layout": index.layout.split("-")[0],
        "nprobe": nprobe_for(nlist_for(count)) if count >= ANN_THRESHOLD else None, "build_s": round(built, 1),
        "memory_mb": round(memory), "snapshot_mb": round(index.path.stat().st_size / 2**20),
        "recall@10": round(recall(found - 1, truth), 4),
        **latency(lambda q: index.search(q, K), queries[:LATENCY_QUERIES])}
    if figures["nprobe"] is not None:  # the breadth around the default, for choosing it
        figures["nprobe_sweep"] = []
        for factor in (0.5, 0.75, 1.0, 1.5):
            index.nprobe = max(1, round(figures["nprobe"] * factor))
            found = index.search(queries, K)[1]
            figures["nprobe_sweep"].append({"nprobe": index.nprobe, "recall@10": round(recall(found - 1, truth), 4),
                                            **latency(lambda q: index.search(q, K), queries[:LATENCY_QUERIES])})
            print(f"    {figures['nprobe_sweep'][-1]}", flush=True)
        index.nprobe = None
    started = time.perf_counter()
    reader = VectorIndex(directory, "gallery", "bench", DIM)
    assert reader.load() and len(reader) == count
    figures["load_s"] = round(time.perf_counter() - started, 1)

    rng = np.random.default_rng(7)
    enrolls: list[float] = []
    deletes: list[float] = []
    catch_ups: list[float] = []
    with serving_threads():
        generation = time_writes(index, reader, rng, count, writes, enrolls, deletes, catch_ups)
    assert len(reader) == len(index) and reader.generation == generation
    figures |= {"enroll_ms_median": round(statistics.median(enrolls), 2), "enroll_ms_max": round(max(enrolls), 2),
                "delete_ms_median": round(statistics.median(deletes), 2), "delete_ms_max": round(max(deletes), 2),
                "catch_up_ms_median": round(statistics.median(catch_ups), 2), "writes": writes,
                "log_kb_after": round(index.log_path.stat().st_size / 1024)}
    started = time.perf_counter()
    index.save()
    figures["compaction_s"] = round(time.perf_counter() - started, 1)
    reader.close()
    index.close()
    return figures


def time_writes(index: VectorIndex, reader: VectorIndex, rng: np.random.Generator, count: int, writes: int,
                enrolls: list[float], deletes: list[float], catch_ups: list[float]) -> int:
    """Time ``writes`` enrolls (4 vectors, marked) and deletes (2 new, 2 from the snapshot, marked), and
    the reader catching up after each; return the last generation."""
    next_id, generation = count + 1, 1
    for _ in range(writes):
        fresh = rng.normal(size=(4, DIM)).astype(np.float32)
        fresh /= np.linalg.norm(fresh, axis=1, keepdims=True)
        new_ids = np.arange(next_id, next_id + 4, dtype=np.int64)
        next_id += 4
        generation += 1
        started = time.perf_counter()
        index.add(new_ids, fresh)
        index.mark(generation)
        enrolls.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        caught = reader.catch_up() or reader.load()
        catch_ups.append((time.perf_counter() - started) * 1e3)
        assert caught and reader.generation == generation
        victims = np.concatenate([new_ids[:2], rng.integers(1, count + 1, 2)])  # new ones and ones in the snapshot
        generation += 1
        started = time.perf_counter()
        index.remove(victims)
        index.mark(generation)
        deletes.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        caught = reader.catch_up() or reader.load()
        catch_ups.append((time.perf_counter() - started) * 1e3)
        assert caught and reader.generation == generation
    return generation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--ten-million", action="store_true", help="add a 10M run (long: not for CI)")
    parser.add_argument("--compare", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure IVF-Flat / IVF-SQ8 / HNSW directly in FAISS")
    parser.add_argument("--hnsw-max", type=int, default=1_000_000, help="largest size HNSW is built at")
    parser.add_argument("--compare-max", type=int, default=1_000_000, help="largest size --compare runs at")
    parser.add_argument("--writes", type=int, default=30, help="enroll + delete pairs timed per size")
    parser.add_argument("--search-threads", type=int, default=SEARCH_THREADS,
                        help="FAISS threads for searches and writes (a server worker uses 1)")
    parser.add_argument("--dir", type=Path, default=None, help="where the index files go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=PROJECT / "bench-results" / "index_scale.json")
    args = parser.parse_args()
    _serving["threads"] = args.search_threads
    logging.basicConfig(level=logging.WARNING)
    sizes = args.sizes + ([10_000_000] if args.ten_million else [])
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "faiss": faiss.__version__,
                    "faiss_threads": faiss.omp_get_max_threads(), "load_average": os.getloadavg()},
        "settings": {"ann_threshold": ANN_THRESHOLD, "nprobe_at_512_lists": NPROBE,
                     "search_threads": args.search_threads,
                     "dim": DIM, "views": VIEWS, "queries": QUERIES, "latency_queries": LATENCY_QUERIES, "k": K},
        "sizes": []}
    for count in sizes:
        print(f"{count:,} vectors", flush=True)
        started = time.perf_counter()
        vectors, queries = synthetic(count)
        truth = exact_top(vectors, queries)
        print(f"  data and exact top-10 in {time.perf_counter() - started:.0f} s", flush=True)
        entry: dict[str, Any] = {"vectors": count}
        if args.compare and count <= args.compare_max:
            print("  layouts in FAISS:", flush=True)
            entry["layouts"] = compare_layouts(vectors, queries, truth, args.hnsw_max)
        data = [vectors]
        del vectors
        with tempfile.TemporaryDirectory(dir=args.dir) as directory:
            entry["service_index"] = measure_service_index(data, queries, truth, args.writes, Path(directory))
        print(f"  VectorIndex: {entry['service_index']}", flush=True)
        results["sizes"].append(entry)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    results["machine"]["load_average_after"] = os.getloadavg()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
