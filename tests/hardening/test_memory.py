"""Memory per request against the real ``reid serve``: decoded pixels are bounded per request and per worker.

The attack images are all-black 6300 x 6300 PNGs: 115 KB on the wire, 119 MB decoded, each
one under the per-image limit (40 million pixels), each copy with another trailing byte so
none is a duplicate. Memory is the worker's peak resident set (``VmHWM``), read from /proc.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from gallery.uploads import MAX_REQUEST_PIXELS
from tests.hardening.server import Server, enroll, migrated_data_dir, person_jpegs, write_results

SIDE = 6300
MIB = 2**20
# Two requests' worth of pixels decoded at once (REID_MAX_CONCURRENT_DECODES=2), 3 bytes each,
# plus the working copies and allocator slack of the requests in progress.
CEILING_MIB = 2 * MAX_REQUEST_PIXELS * 3 / MIB + 250


@pytest.fixture(scope="module")
def black_png() -> bytes:
    data = cv2.imencode(".png", np.zeros((SIDE, SIDE, 3), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1]
    return data.tobytes()


def copies(png: bytes, count: int, first: int = 0) -> list[bytes]:
    """Return ``count`` distinct copies of ``png`` (another byte after IEND each)."""
    return [png + bytes([first + n]) for n in range(count)]


def worker_pids(master: int) -> list[int]:
    """Return the pids of the gunicorn master's worker processes."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def peak_rss_mib(pid: int) -> float:
    """Return a process's peak resident set size in MiB (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``reid serve`` with one worker of four threads (so every request meets the same worker)."""
    running = Server(migrated_data_dir(tmp_path / "data"), workers=1, threads=4)
    running.start()
    try:
        assert enroll(running.port, "Warm", person_jpegs(1, 1))[0] == 201
        yield running
    finally:
        running.stop()


def test_too_many_pixels_in_one_request_are_refused_before_decoding(server: Server, black_png: bytes) -> None:
    assert server.process is not None
    (worker,) = worker_pids(server.process.pid)
    before = peak_rss_mib(worker)
    started = time.monotonic()
    status, answer = enroll(server.port, "Bomb", copies(black_png, 50), timeout=60.0)
    seconds = time.monotonic() - started
    grown = peak_rss_mib(worker) - before
    assert status == 413, (status, answer)
    assert answer["error"]["code"] == "toolarge" and "pixels together" in answer["error"]["message"]
    assert seconds < 10 and grown < 100, (seconds, grown)


@pytest.mark.slow
def test_concurrent_large_requests_stay_under_the_memory_ceiling(server: Server, black_png: bytes) -> None:
    """Four requests at once, each just under the per-request limit: the worker stays under the ceiling."""
    assert server.process is not None
    (worker,) = worker_pids(server.process.pid)
    before = peak_rss_mib(worker)
    per_request = MAX_REQUEST_PIXELS // (SIDE * SIDE)  # 2 images: 79 million pixels
    statuses: list[int] = []

    def send(n: int) -> None:
        status, _ = enroll(server.port, f"Large {n}", copies(black_png, per_request, first=10 * n),
                           timeout=120.0)
        statuses.append(status)

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    seconds = time.monotonic() - started
    grown = peak_rss_mib(worker) - before
    write_results("hardening-memory", {
        "images_per_request": per_request, "pixels_per_request": per_request * SIDE * SIDE,
        "concurrent_requests": 4, "statuses": sorted(statuses), "seconds": round(seconds, 1),
        "worker_peak_rss_before_mib": round(before), "worker_peak_rss_growth_mib": round(grown),
        "ceiling_mib": round(CEILING_MIB)})
    assert len(statuses) == 4 and set(statuses) <= {201, 503} and statuses.count(201) >= 2, statuses
    assert grown < CEILING_MIB, (grown, CEILING_MIB)
