"""POST /api/search under concurrent clients, served as ``reid serve`` serves, against a large footage index.

Usage: python -m benchmarks.http_search [--vectors 1000000] [--clients 8] [--requests 40]
       [--frame-requests 10] [--workers 2] [--threads 4] [--data DIR] [--dir DIR]
       [--out bench-results/http_search.json]

It fills a fresh data directory with one synthetic video of ``--vectors / 4`` sightings, each
with a crop row and 4 member vectors (``benchmarks.index_scale.synthetic``: identities x views,
unit length), written straight into the database, then builds the sightings index through the
gallery as the service would (IVF-Flat above ``REID_ANN_THRESHOLD``), so the server's workers
load it from its files. ``PLANTED`` sightings get vectors near the query crop's own embedding, so
that each search finds sightings to return as a real one would. No person is enrolled.

It then starts ``reid serve`` (gunicorn, ``--workers`` processes of ``--threads`` threads) and has
``--clients`` threads post, one request after another, ``--requests`` times a person crop from
PETS09-S2L1 (../shared/data), then ``--frame-requests`` times its frame resized to 1920x1080
(detected whole and in tiles). Latency p50/p99 and requests/s per still, after a warm-up round; the load
average beside them (the clients share the machine with the server). Printed and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import requests
import sqlalchemy as sa
from numpy.typing import NDArray

from base.images import encode_jpeg
from benchmarks.footage_benchmark import read_mot_identities
from benchmarks.index_scale import synthetic
from gallery.models import Sighting, SightingCrop, SightingVector, Video, pack_vector
from gallery.schema import upgrade
from web import create_app

PROJECT = Path(__file__).resolve().parents[1]
MEMBERS = 4  # vectors per sighting, as footage stores them
PLANTED = 30  # sightings near the query crop
CHUNK = 50_000  # rows per insert


def stills(data: Path) -> dict[str, bytes]:
    """Return JPEGs of PETS09-S2L1's tallest ground-truth person and of that frame resized to 1920x1080."""
    video = data / "footage" / "pets09-s2l1.avi"
    if not video.is_file():
        raise SystemExit(f"no {video}: the benchmark needs ../shared/data's footage")
    index, (x, y, w, h) = max(((index, box) for index, people in read_mot_identities(
        data / "footage" / "pets09-s2l1.gt.txt").items() for _, box in people), key=lambda item: item[1][3])
    capture = cv2.VideoCapture(str(video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    capture.release()
    if not ok:
        raise SystemExit(f"cannot read frame {index} of {video}")
    x, y, w, h = (max(0, int(v)) for v in (x, y, w, h))  # the tallest person in the video
    return {"person crop": encode_jpeg(frame[y:y + h, x:x + w], 90),
            "1080p frame": encode_jpeg(cv2.resize(frame, (1920, 1080), interpolation=cv2.INTER_LINEAR), 90)}


def fill(data_dir: Path, count: int, near: NDArray[np.float32], seed: int = 0) -> dict[str, float]:
    """Write ``count`` synthetic footage vectors into a new gallery at ``data_dir`` and build its index.

    Returns:
        Seconds spent inserting rows and building the index.
    """
    app = create_app({"DATA_DIR": str(data_dir)})
    state = app.extensions["reid"]
    data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(state.database_url)
    vectors, _ = synthetic(count, seed, queries=1)
    rng = np.random.default_rng([seed, 9])
    planted = near + rng.normal(size=(PLANTED * MEMBERS, near.size)).astype(np.float32) * 0.05
    vectors[:len(planted)] = planted / np.linalg.norm(planted, axis=1, keepdims=True)
    sightings = -(-count // MEMBERS)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    with state.sessions() as session:
        session.execute(sa.insert(Video), [dict(
            id=1, path="synthetic.mp4", camera="synthetic", sha256="0" * 64, model_id=state.embedder.model_id,
            settings="synthetic", recorded_start=start, fps=10.0, frame_count=sightings * 10,
            frames_analysed=sightings, duration_s=sightings, processing_s=0.0)])
        for first in range(0, sightings, CHUNK):
            ids = range(first + 1, min(sightings, first + CHUNK) + 1)
            session.execute(sa.insert(Sighting), [dict(
                id=i, video_id=1, start_time=start + timedelta(seconds=i), end_time=start + timedelta(seconds=i + 1),
                start_frame=10 * i, end_frame=10 * i + 9, detections=10,
                mean_vector=pack_vector(vectors[MEMBERS * (i - 1)])) for i in ids])
            session.execute(sa.insert(SightingCrop), [dict(
                sighting_id=i, rank=0, frame=10 * i, x=0, y=0, w=64, h=128, detection_score=0.9, sharpness=400.0,
                quality=1.0, stored_path="synthetic.jpg") for i in ids])
            session.execute(sa.insert(SightingVector), [dict(
                id=row + 1, sighting_id=row // MEMBERS + 1, frame=0, quality=1.0, vector=pack_vector(vectors[row]))
                for row in range(MEMBERS * (ids[0] - 1), min(count, MEMBERS * ids[-1]))])
        session.commit()
        inserted = time.perf_counter()
        indexed = len(state.gallery.sightings.index(session))
    assert indexed == count, (indexed, count)
    state.engine.dispose()
    return {"insert_s": round(inserted - began, 1), "index_build_s": round(time.perf_counter() - inserted, 1)}


def free_port() -> int:
    """Return a TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, server: subprocess.Popen[bytes], limit_s: float = 600.0) -> None:
    """Return once ``url``/api/health answers 200; exit if the server stops or ``limit_s`` passes."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if requests.get(f"{url}/api/health", timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still warming up
            pass
        time.sleep(1.0)
    raise SystemExit(f"the server did not answer within {limit_s:.0f} s")


def post_all(url: str, still: bytes, clients: int, each: int) -> tuple[list[float], float, list[dict[str, Any]]]:
    """Have ``clients`` threads post ``still`` ``each`` times; return the latencies, the wall time, the last answers."""
    def client(_: int) -> tuple[list[float], dict[str, Any]]:
        latencies, answer = [], {}
        with requests.Session() as http:
            for _ in range(each):
                began = time.perf_counter()
                reply = http.post(f"{url}/api/search", files={"image": ("still.jpg", still, "image/jpeg")}, timeout=300)
                latencies.append(time.perf_counter() - began)
                if reply.status_code != 200:
                    raise SystemExit(f"POST /api/search answered {reply.status_code}: {reply.text[:300]}")
                answer = reply.json()
        return latencies, answer

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        outcomes = list(pool.map(client, range(clients)))
    return [t for times, _ in outcomes for t in times], time.perf_counter() - began, [a for _, a in outcomes]


def summary(latencies: list[float], wall: float, answer: dict[str, Any]) -> dict[str, Any]:
    """Return p50/p99 in ms, requests/s, and what the last answer found."""
    results = answer.get("results", [])
    return {"requests": len(latencies), "p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 1),
            "p99_ms": round(float(np.percentile(latencies, 99)) * 1000, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1), "requests_per_s": round(len(latencies) / wall, 2),
            "persons_detected": answer.get("detected"),
            "sightings_returned": max((len(r.get("sightings", [])) for r in results), default=0),
            "load_average": [round(v, 2) for v in os.getloadavg()]}


def main() -> None:
    """Build the gallery, serve it, measure each still, print the figures and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=40, help="requests per client with the person crop")
    parser.add_argument("--frame-requests", type=int, default=10, help="requests per client with the 1080p frame")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (reid serve's default)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (reid serve's default)")
    parser.add_argument("--data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument("--dir", type=Path, default=None, help="data directory to build in [default: a temporary one]")
    parser.add_argument("--out", type=Path, default=PROJECT / "bench-results" / "http_search.json")
    args = parser.parse_args()
    shots = stills(args.data)
    with tempfile.TemporaryDirectory(prefix="http-search-") as tmp:
        data_dir = args.dir or Path(tmp) / "data"
        probe = create_app({"DATA_DIR": str(data_dir)}).extensions["reid"].embedder
        crop = cv2.imdecode(np.frombuffer(shots["person crop"], np.uint8), cv2.IMREAD_COLOR)
        build = fill(data_dir, args.vectors, probe.embed([crop])[0])
        print(f"{args.vectors} vectors: inserted in {build['insert_s']} s, index built in {build['index_build_s']} s",
              flush=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "reid"), "--data-dir", str(data_dir), "serve", "--port", str(port),
             "--workers", str(args.workers), "--threads", str(args.threads)], cwd=PROJECT)
        try:
            wait_until_up(url, server)
            figures = {}
            for (name, still), each in zip(shots.items(), (args.requests, args.frame_requests)):
                post_all(url, still, args.clients, 1)  # warm-up: every worker has served this still
                latencies, wall, answers = post_all(url, still, args.clients, each)
                figures[name] = summary(latencies, wall, answers[-1])
                f = figures[name]
                print(f"{name}: p50 {f['p50_ms']} ms  p99 {f['p99_ms']} ms  {f['requests_per_s']} requests/s  "
                      f"({f['requests']} requests, {args.clients} clients; {f['persons_detected']} detected, "
                      f"{f['sightings_returned']} sightings; load {f['load_average'][0]})", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
    report = {"vectors": args.vectors, "clients": args.clients, "workers": args.workers, "threads": args.threads,
              "build": build, "machine": platform.platform(), "cpus": os.cpu_count(), "stills": figures}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
