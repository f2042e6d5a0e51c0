"""SIGKILL the real server, or ``reid index-footage``, at random moments: nothing is lost or half-done.

Each kill takes the whole process group at once (gunicorn's master and workers; the indexer and
its analysis process), at a seeded random moment inside a stream of requests or a run. After
each, the server starts again and the data directory is read from outside: every acknowledged
write is there, nothing half-written is visible, and the database, the FAISS index file and the
stored files agree.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import itertools
import random
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from footage.analysis import analyse_video
from tests.conftest import PROJECT_ROOT, ThumbnailEmbedder
from tests.footage.conftest import SETTINGS
from tests.footage.synthetic import ColourDetector, Walker, write_video
from tests.hardening.server import (
    Server,
    enroll,
    kill_group,
    migrated_data_dir,
    percentiles,
    person_jpegs,
    reid_command,
    reid_env,
    request,
    search,
    sha256,
    stored,
    stored_footage,
    top_person,
    write_results,
)

pytestmark = pytest.mark.slow  # real servers killed and restarted, 20 times per operation

SEED = 20261128
KILLS = 20                      # per operation
GONE = (OSError, http.client.HTTPException)  # what a client sees of a killed server


@pytest.fixture(scope="module")
def figures() -> Iterator[dict]:
    """Collect each test's figures; write them to bench-results/hardening-crashes.json."""
    found: dict = {}
    yield found
    write_results("hardening-crashes", found)


@dataclass
class Ledger:
    """What the client sent and what the server acknowledged, by person name (unique per request).

    Names, not ids, identify persons: SQLite hands a deleted highest id to the next new row.
    """

    sent: dict[str, frozenset[str]] = field(default_factory=dict)   # name -> image hashes
    first_image: dict[str, bytes] = field(default_factory=dict)
    acked: dict[str, int] = field(default_factory=dict)              # name -> person id
    delete_sent: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)                   # acknowledged deletes
    unexpected: list[tuple] = field(default_factory=list)           # answers other than success
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alive(self) -> list[str]:
        """Acknowledged persons no delete was sent for."""
        return sorted(name for name in self.acked if name not in self.delete_sent)

    def problems(self, data_dir: Path) -> list[str]:
        """Compare the data directory with the ledger; describe every disagreement."""
        found = stored(data_dir)
        problems = found.problems()
        ids = {name: pid for pid, (name, _) in found.persons.items()}
        if len(ids) != len(found.persons):
            problems.append("a request created two persons")
        for pid, (name, shas) in found.persons.items():
            if name not in self.sent:
                problems.append(f"person {pid} ({name}) was never sent")
            elif shas != self.sent[name]:
                problems.append(f"person {pid} ({name}) is half-written: {len(shas)} of "
                                f"{len(self.sent[name])} images")
        for name, pid in self.acked.items():
            if name in self.deleted and name in ids:
                problems.append(f"person {pid} ({name}) was deleted (acknowledged) but is back")
            elif name not in self.delete_sent and ids.get(name) != pid:
                problems.append(f"person {pid} ({name}) was acknowledged but is lost")
        return problems


class Load:
    """Client threads sending requests back to back until the server dies (or they finish)."""

    def __init__(self) -> None:
        self.started = 0
        self.latencies: list[float] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def timed(self, send: Callable[[], tuple[int, object]]) -> tuple[int, object]:
        """Count a request as started, send it, record its latency; GONE errors propagate."""
        with self._lock:
            self.started += 1
        began = time.monotonic()
        answer = send()
        with self._lock:
            self.latencies.append(time.monotonic() - began)
        return answer

    def spawn(self, loop: Callable[[], None]) -> None:
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self._threads.append(thread)

    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=30)
        assert not self.running(), "a client thread hangs"


def kill_mid_stream(server: Server, load: Load, rng: random.Random, most: int, latency: float) -> None:
    """Wait until 1..``most`` requests have started, then a random part of a request's time; kill."""
    target = rng.randint(1, most)
    deadline = time.monotonic() + 20
    while load.started < target and load.running() and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(rng.uniform(0.0, latency))
    server.kill()
    load.join()


def typical(latencies: list[float], default: float = 0.05) -> float:
    """The median latency so far (a request's typical duration)."""
    return sorted(latencies)[len(latencies) // 2] if latencies else default


def enroll_loop(port: int, ledger: Ledger, load: Load, rng: random.Random, prefix: str,
                numbers: Iterator[int], images_per_person: tuple[int, int] = (1, 3)) -> Callable[[], None]:
    """Return a client loop enrolling new persons (1-3 images each) until the server is gone."""

    def loop() -> None:
        for n in itertools.count():
            name = f"{prefix}-{n}"
            with ledger.lock:
                images = person_jpegs(next(numbers), rng.randint(*images_per_person))
                ledger.sent[name] = frozenset(sha256(data) for data in images)
                ledger.first_image[name] = images[0]
            try:
                status, body = load.timed(functools.partial(enroll, port, name, images, timeout=20))
            except GONE:
                return
            with ledger.lock:
                if status == 201:
                    ledger.acked[name] = body["person"]["id"]
                else:
                    ledger.unexpected.append(("enroll", name, status, body))

    return loop


def delete_loop(port: int, ledger: Ledger, load: Load, pool: list[str]) -> Callable[[], None]:
    """Return a client loop deleting the persons named in ``pool`` until it is empty or the server gone."""

    def loop() -> None:
        while True:
            with ledger.lock:
                if not pool:
                    return
                name = pool.pop()
                ledger.delete_sent.add(name)
            pid = ledger.acked[name]
            try:
                status, body = load.timed(functools.partial(request, port, "DELETE", f"/api/persons/{pid}", timeout=20))
            except GONE:
                return
            with ledger.lock:
                if status == 200:
                    ledger.deleted.add(name)
                else:
                    ledger.unexpected.append(("delete", name, status, body))

    return loop


def search_loop(port: int, ledger: Ledger, load: Load, rng: random.Random) -> Callable[[], None]:
    """Return a client loop searching for acknowledged persons, checking each is found first."""

    def loop() -> None:
        while True:
            with ledger.lock:
                name = rng.choice(ledger.alive())
                pid, image = ledger.acked[name], ledger.first_image[name]
            try:
                status, body = load.timed(functools.partial(search, port, image, timeout=20))
            except GONE:
                return
            if status != 200 or top_person(body) != pid:
                with ledger.lock:
                    ledger.unexpected.append(("search", pid, status, top_person(body) if status == 200 else body))

    return loop


def check_after_restart(server: Server, ledger: Ledger, rng: random.Random) -> float:
    """Start the server again, compare the data with the ledger, spot-check a search; return start time."""
    seconds = server.start()
    problems = ledger.problems(server.data_dir)
    alive = ledger.alive()
    if alive:
        name = rng.choice(alive)
        status, body = search(server.port, ledger.first_image[name])
        if status != 200 or top_person(body) != ledger.acked[name]:
            problems.append(f"search after restart: {name} not found first ({status})")
    assert not problems, "\n".join(problems)
    assert not ledger.unexpected, ledger.unexpected[:5]
    return seconds


def enroll_now(server: Server, ledger: Ledger, name: str, number: int, images: int) -> str:
    """Enroll one person while the server is up (the write is acknowledged); return the name."""
    data = person_jpegs(number, images)
    ledger.sent[name] = frozenset(sha256(d) for d in data)
    ledger.first_image[name] = data[0]
    status, body = enroll(server.port, name, data)
    assert status == 201, body
    ledger.acked[name] = body["person"]["id"]
    return name


def test_enroll_survives_kills(tmp_path: Path, figures: dict) -> None:
    rng = random.Random(SEED)
    server = Server(migrated_data_dir(tmp_path / "data"))
    ledger, numbers, latencies, starts = Ledger(), itertools.count(1), [], []
    began = time.monotonic()
    try:
        starts.append(server.start())
        for kill in range(KILLS):
            load = Load()
            for thread in range(2):
                load.spawn(enroll_loop(server.port, ledger, load, random.Random(rng.random()),
                                       f"k{kill}t{thread}", numbers))
            kill_mid_stream(server, load, rng, most=6, latency=typical(latencies))
            latencies += load.latencies
            starts.append(check_after_restart(server, ledger, rng))
    finally:
        server.stop()
    figures["enroll"] = {"kills": KILLS, "enrolls_acknowledged": len(ledger.acked),
                         "enrolls_sent": len(ledger.sent), **server.repairs(), "latency": percentiles(latencies),
                         "server_start": percentiles(starts), "seconds": round(time.monotonic() - began, 1)}


def test_delete_survives_kills(tmp_path: Path, figures: dict) -> None:
    rng = random.Random(SEED + 1)
    server = Server(migrated_data_dir(tmp_path / "data"))
    ledger, latencies = Ledger(), []
    began = time.monotonic()
    try:
        server.start()
        for kill in range(KILLS):
            pool = ledger.alive()
            for n in range(len(pool), 10):  # top the pool up with acknowledged persons
                pool.append(enroll_now(server, ledger, f"k{kill}-{n}", 1000 * kill + n, rng.randint(1, 3)))
            rng.shuffle(pool)
            load = Load()
            for _ in range(2):
                load.spawn(delete_loop(server.port, ledger, load, pool))
            kill_mid_stream(server, load, rng, most=8, latency=typical(latencies))
            latencies += load.latencies
            check_after_restart(server, ledger, rng)
    finally:
        server.stop()
    figures["delete"] = {"kills": KILLS, "deletes_acknowledged": len(ledger.deleted),
                         "deletes_sent": len(ledger.delete_sent), **server.repairs(), "latency": percentiles(latencies),
                         "seconds": round(time.monotonic() - began, 1)}


def damage(path: Path, rng: random.Random, stale: bytes | None) -> str:
    """Remove, truncate, scramble or replace with an older copy the index file; return which."""
    how = rng.choice(["missing", "truncated", "garbage", "stale"] if stale else ["missing", "truncated", "garbage"])
    data = path.read_bytes() if path.is_file() else b""
    path.unlink(missing_ok=True)
    if how == "truncated":
        path.write_bytes(data[:rng.randint(0, len(data))])
    elif how == "garbage":
        path.write_bytes(rng.randbytes(rng.randint(1, 4096)))
    elif how == "stale":
        path.write_bytes(stale or b"")
    return how


def test_rebuild_survives_kills(tmp_path: Path, figures: dict) -> None:
    """Damage the index file, make the server rebuild it (at run time or at start-up), kill it."""
    rng = random.Random(SEED + 2)
    server = Server(migrated_data_dir(tmp_path / "data"))
    ledger, numbers, latencies, ready = Ledger(), itertools.count(1), [], []
    index_file = server.data_dir / "index" / f"gallery-{ThumbnailEmbedder.model_id}.faiss"
    damages: dict[str, int] = {}
    began = time.monotonic()
    try:
        server.start()
        for n in range(40):
            enroll_now(server, ledger, f"seed-{n}", next(numbers), 3)
        stale = index_file.read_bytes()
        for kill in range(KILLS):
            how = damage(index_file, rng, stale)
            damages[how] = damages.get(how, 0) + 1
            if kill % 2 == 0:  # at run time: every worker is told the gallery changed, and re-syncs
                with contextlib.closing(sqlite3.connect(server.data_dir / "reid.db", timeout=30)) as db, db:
                    db.execute("UPDATE index_state SET generation = generation + 1 WHERE name = 'gallery'")
                load = Load()
                load.spawn(search_loop(server.port, ledger, load, random.Random(rng.random())))
                load.spawn(enroll_loop(server.port, ledger, load, random.Random(rng.random()),
                                       f"k{kill}", numbers))
                kill_mid_stream(server, load, rng, most=4, latency=typical(latencies))
                latencies += load.latencies
            else:  # at start-up: the worker that boots first rebuilds the file
                server.kill()
                server.spawn()
                time.sleep(rng.uniform(0.3, 1.2) * typical(ready, default=1.5))
                server.kill()
            ready.append(check_after_restart(server, ledger, rng))
    finally:
        server.stop()
    figures["rebuild"] = {"kills": KILLS, "damaged_files": damages, "vectors": len(stored(server.data_dir).image_ids),
                          **server.repairs(),
                          "latency": percentiles(latencies), "server_start": percentiles(ready),
                          "seconds": round(time.monotonic() - began, 1)}


# -- footage indexing ----------------------------------------------------------------------------

VIDEOS_PER_RUN = 2
INDEXED = "INFO gallery.footage_indexing: indexed "  # the indexer's log line after each video


def make_videos(folder: Path, count: int) -> dict[str, list[tuple[int, int]]]:
    """Write ``count`` short videos of two walkers each; return each one's sightings (crops, vectors)."""
    folder.mkdir(parents=True)
    detector, embedder = ColourDetector(), ThumbnailEmbedder()
    expected = {}
    for k in range(count):
        walkers = (Walker(pattern=100 + 2 * k, first=0, last=19, x=-20, y=30, dx=14),
                   Walker(pattern=101 + 2 * k, first=6, last=29, x=280, y=130, dx=-10))
        path = write_video(folder / f"clip{k:03d}.avi", walkers, 30)
        analysis = analyse_video(path, SETTINGS, detector, embedder)
        assert analysis.tracks, f"{path.name}: the synthetic walkers were not found"
        expected[sha256(path.read_bytes())] = sorted((len(t.best_crops), len(t.members)) for t in analysis.tracks)
    return expected


def index_command(data_dir: Path, recordings: Path) -> list[str]:
    return reid_command(data_dir, "index-footage", str(recordings), "--fps", str(SETTINGS.analysis_fps),
                        "--workers", "1", "--start", "2026-11-27T22:00:00")


def test_index_footage_survives_kills(tmp_path: Path, figures: dict) -> None:
    """Kill the indexer while it records videos; the next runs finish the job, each video once."""
    rng = random.Random(SEED + 3)
    data_dir = migrated_data_dir(tmp_path / "data")
    library = tmp_path / "library"
    expected = make_videos(library, VIDEOS_PER_RUN * KILLS + 4)
    clips = sorted(library.iterdir())
    recordings = tmp_path / "recordings" / "gate"
    recordings.mkdir(parents=True)
    env = reid_env(REID_DETECTOR="tests.footage.synthetic:ColourDetector")
    log_path = tmp_path / "index.log"
    to_first, gaps, recorded_per_run = [], [], []
    kills = runs = 0
    began = time.monotonic()
    while kills < KILLS:
        assert runs < KILLS + 10, "the indexer keeps finishing before it is killed"
        for clip in clips[VIDEOS_PER_RUN * runs:VIDEOS_PER_RUN * (runs + 1)]:  # the night's new footage
            shutil.copy2(clip, recordings / clip.name)
        runs += 1
        before = len(stored_footage(data_dir).videos)
        with open(log_path, "w") as log:
            process = subprocess.Popen(index_command(data_dir, recordings.parent), cwd=PROJECT_ROOT, env=env,
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        started = time.monotonic()
        wait_for, seen = rng.randint(0, 2), []  # videos recorded before the kill is armed
        while len(seen) < wait_for and process.poll() is None and time.monotonic() - started < 60:
            if log_path.read_text(errors="replace").count(INDEXED) > len(seen):
                seen.append(time.monotonic())
            time.sleep(0.002)
        if seen:
            to_first.append(seen[0] - started)
        gaps += [b - a for a, b in itertools.pairwise(seen)]
        if wait_for == 0:  # anywhere from start-up to the first video's record
            time.sleep(rng.uniform(0.0, 1.1) * typical(to_first, default=4.0))
        else:              # between this video's record and the next one's
            time.sleep(rng.uniform(0.0, 1.1) * typical(gaps, default=0.15))
        if process.poll() is None:
            kills += 1
        kill_group(process)
        footage = stored_footage(data_dir)
        recorded_per_run.append(len(footage.videos) - before)
        assert footage.duplicates == 0
        for sha, sightings in footage.videos.items():
            assert sightings == expected[sha], f"video {sha[:12]} is half-indexed: {sightings}"
        assert footage.referenced <= footage.files, "a sighting's crop file is missing"
    for clip in clips[VIDEOS_PER_RUN * runs:]:
        shutil.copy2(clip, recordings / clip.name)
    final = subprocess.run(index_command(data_dir, recordings.parent), cwd=PROJECT_ROOT, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    footage = stored_footage(data_dir)
    assert footage.videos == expected, "not every video is indexed exactly once with all its sightings"
    assert footage.files == footage.referenced, "orphan or missing crop files"
    assert sorted(footage.index_ids or []) == sorted(footage.vector_ids), "sightings index != database"
    assert not footage.stray, footage.stray
    figures["index_footage"] = {"kills": kills, "runs": runs + 1, "videos": len(expected),
                                "videos_recorded_per_killed_run": recorded_per_run,
                                "seconds_to_first_record": percentiles(to_first),
                                "seconds": round(time.monotonic() - began, 1)}
