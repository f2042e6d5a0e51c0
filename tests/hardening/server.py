"""The real ``reid serve`` (gunicorn) in its own process group, a plain HTTP client, and checks.

Used by the crash and concurrency tests: start a server on a free localhost port with the fake
models (no TensorFlow), wait for ``/api/health``, stop it, or SIGKILL its whole process group.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gallery.db import make_engine, sqlite_url
from gallery.models import (
    Embedding,
    Image,
    Person,
    Sighting,
    SightingCrop,
    SightingVector,
    Video,
)
from gallery.schema import upgrade
from gallery.vector_index import VectorIndex
from tests.conftest import PROJECT_ROOT, ThumbnailEmbedder, jpeg_bytes, person_image

EMBEDDER = "tests.conftest:ThumbnailEmbedder"
FAKE_MODELS = {"REID_EMBEDDER": EMBEDDER, "REID_DETECTOR": "none", "REID_MATCH_THRESHOLD": "0.8"}
RESULTS_DIR = PROJECT_ROOT / "bench-results"


def reid_env(**extra: str) -> dict[str, str]:
    """Return the environment for a ``reid`` subprocess: fake models, the project importable."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("REID_", "GUNICORN_"))}
    env.update(FAKE_MODELS)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


def reid_command(data_dir: Path, *args: str) -> list[str]:
    """Return the argv of ``reid --data-dir DATA_DIR ARGS...`` run by this interpreter."""
    return [sys.executable, "-c", "from web.cli import main; main()", "--data-dir", str(data_dir), *args]


def migrated_data_dir(path: Path) -> Path:
    """Create ``path`` with a SQLite database at the newest schema."""
    path.mkdir(parents=True, exist_ok=True)
    upgrade(sqlite_url(path / "reid.db"))
    return path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL ``process`` and every process in its group (it leads its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@dataclass
class Server:
    """One ``reid serve`` run: gunicorn with ``workers`` processes on a fresh port."""

    data_dir: Path
    workers: int = 2
    threads: int = 4
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen | None = None
    started_at: float = 0.0

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def spawn(self) -> None:
        """Start the server in a new session (its own process group) without waiting."""
        assert self.process is None, "already started"
        self.port = free_port()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                reid_command(self.data_dir, "serve", "--port", str(self.port),
                             "--workers", str(self.workers), "--threads", str(self.threads)),
                cwd=PROJECT_ROOT, env=reid_env(**self.env), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.started_at = time.monotonic()

    def start(self, timeout: float = 60.0) -> float:
        """Start the server, wait until ``/api/health`` answers 200; return the seconds taken."""
        self.spawn()
        assert self.process is not None
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"reid serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                status, _ = request(self.port, "GET", "/api/health", timeout=2.0)
                if status == 200:
                    return time.monotonic() - self.started_at
            except OSError:
                pass
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"reid serve not ready after {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM to the master); SIGKILL the group if it lingers."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=20)
        kill_group(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the master and all its workers at once."""
        if self.process is not None:
            kill_group(self.process)
            self.process = None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def repairs(self) -> dict[str, int]:
        """Count, in the server's log so far, the gallery index rebuilds and the orphan-file cleanups."""
        text = self.log_path.read_text(errors="replace")
        rebuilds = re.findall(r"rebuilding gallery-\S+ from the database \((\d+) vectors\)", text)
        return {"index_rebuilds": sum(int(n) > 0 for n in rebuilds),
                "orphan_file_cleanups": len(re.findall(r"removed \d+ image files", text))}


# -- HTTP ------------------------------------------------------------------------------------

def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """Encode form ``fields`` and ``(field, filename, data)`` files; return body and content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(port: int, method: str, path: str, body: bytes | None = None,
            content_type: str | None = None, *, timeout: float = 30.0,
            connection: http.client.HTTPConnection | None = None) -> tuple[int, Any]:
    """Send one request to 127.0.0.1:``port`` and return (status, JSON body or None).

    Without ``connection`` a new one is opened and closed; with one, it is kept alive.
    Raises OSError (or http.client.HTTPException) when the server is gone.
    """
    own = connection is None
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        if own:
            headers["Connection"] = "close"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data) if data else None
        except ValueError:
            return response.status, None
    finally:
        if own:
            conn.close()


def person_jpegs(person: int, count: int) -> list[bytes]:
    """Return ``count`` JPEG variants of synthetic person ``person``."""
    return [jpeg_bytes(person_image(person, variant)) for variant in range(count)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def enroll(port: int, name: str, images: list[bytes], **kw: Any) -> tuple[int, Any]:
    body, kind = multipart({"name": name}, [("images", f"{name}-{i}.jpg", data) for i, data in enumerate(images)])
    return request(port, "POST", "/api/persons", body, kind, **kw)


def search(port: int, image: bytes, top_k: int = 5, **kw: Any) -> tuple[int, Any]:
    body, kind = multipart({"top_k": str(top_k), "threshold": "0.5"}, [("image", "query.jpg", image)])
    return request(port, "POST", "/api/search", body, kind, **kw)


def top_person(answer: Any) -> int | None:
    """Return the best match's person id of a search answer, None when nothing matched."""
    matches = answer["results"][0]["matches"] if answer and answer.get("results") else []
    return matches[0]["person_id"] if matches else None


# -- what is stored ----------------------------------------------------------------------------

@dataclass
class Stored:
    """What a data directory holds, read from outside the server."""

    persons: dict[int, tuple[str, frozenset[str]]]     # id -> (name, image sha256s)
    image_ids: list[int]
    vector_ids: list[int]                               # image ids with a vector of the model
    index_ids: list[int] | None                         # ids in the gallery index file
    referenced: set[str]                                # stored_path of every image row
    files: set[str]                                     # files under images/
    stray: list[str]                                    # temporary files anywhere in the data dir

    def problems(self) -> list[str]:
        """Describe every way the database, the index file and the files disagree."""
        found = []
        if sorted(self.vector_ids) != sorted(self.image_ids):
            found.append(f"images without exactly one vector: {sorted(set(self.image_ids) ^ set(self.vector_ids))}")
        if self.index_ids is None:
            found.append("the gallery index file is missing or unreadable")
        elif sorted(self.index_ids) != sorted(self.vector_ids):
            found.append(f"index ids != vector ids: {sorted(set(self.index_ids) ^ set(self.vector_ids))[:20]}"
                         f" ({len(self.index_ids)} vs {len(self.vector_ids)})")
        if self.files != self.referenced:
            found.append(f"orphan files {sorted(self.files - self.referenced)[:5]}, "
                         f"missing files {sorted(self.referenced - self.files)[:5]}")
        if self.stray:
            found.append(f"temporary files left: {self.stray[:5]}")
        return found


def index_file_ids(data_dir: Path, name: str) -> list[int] | None:
    """Return the ids in an index file of the fake model, None when missing or unreadable."""
    embedder = ThumbnailEmbedder()
    index = VectorIndex(data_dir / "index", name, embedder.model_id, embedder.dim)
    return index.ids().tolist() if index.load() else None


def stored(data_dir: Path) -> Stored:
    """Read the gallery's rows, the index file and the files of ``data_dir``."""
    engine = make_engine(sqlite_url(data_dir / "reid.db"))
    try:
        with engine.connect() as db:
            persons: dict[int, tuple[str, set[str]]] = {
                pid: (name, set()) for pid, name in db.execute(sa.select(Person.id, Person.name))}
            images = db.execute(sa.select(Image.id, Image.person_id, Image.sha256, Image.stored_path)).all()
            for _, person_id, digest, _ in images:
                persons[person_id][1].add(digest)
            vector_ids = db.scalars(sa.select(Embedding.image_id)
                                    .where(Embedding.model_id == ThumbnailEmbedder.model_id)).all()
    finally:
        engine.dispose()
    root = data_dir / "images"
    files = {f"{p.parent.name}/{p.name}" for p in root.glob("*/*") if p.is_file()} if root.is_dir() else set()
    return Stored(persons={pid: (name, frozenset(shas)) for pid, (name, shas) in persons.items()},
                  image_ids=[row[0] for row in images], vector_ids=list(vector_ids),
                  index_ids=index_file_ids(data_dir, "gallery"),
                  referenced={row[3] for row in images}, files=files,
                  stray=[str(p.relative_to(data_dir)) for p in data_dir.rglob("*.tmp")])


@dataclass
class Footage:
    """The footage rows of a data directory, per video content hash."""

    videos: dict[str, list[tuple[int, int]]]  # sha256 -> [(crops, vectors) per sighting], sorted
    duplicates: int                            # videos stored more than once
    vector_ids: list[int]
    index_ids: list[int] | None
    referenced: set[str]
    files: set[str]
    stray: list[str]


def stored_footage(data_dir: Path) -> Footage:
    """Read the videos, sightings, crops and sighting vectors of ``data_dir``."""
    engine = make_engine(sqlite_url(data_dir / "reid.db"))
    try:
        with engine.connect() as db:
            shas = db.scalars(sa.select(Video.sha256)).all()
            crops = dict(db.execute(sa.select(SightingCrop.sighting_id, sa.func.count())
                                    .group_by(SightingCrop.sighting_id)).all())
            vectors = dict(db.execute(sa.select(SightingVector.sighting_id, sa.func.count())
                                      .group_by(SightingVector.sighting_id)).all())
            per_video: dict[str, list[tuple[int, int]]] = {sha: [] for sha in shas}
            for sighting_id, sha in db.execute(sa.select(Sighting.id, Video.sha256).join(Video)):
                per_video[sha].append((crops.get(sighting_id, 0), vectors.get(sighting_id, 0)))
            vector_ids = db.scalars(sa.select(SightingVector.id)).all()
            referenced = set(db.scalars(sa.select(SightingCrop.stored_path)).all())
    finally:
        engine.dispose()
    root = data_dir / "crops"
    files = {f"{p.parent.name}/{p.name}" for p in root.glob("*/*") if p.is_file()} if root.is_dir() else set()
    return Footage(videos={sha: sorted(rows) for sha, rows in per_video.items()},
                   duplicates=len(shas) - len(set(shas)), vector_ids=list(vector_ids),
                   index_ids=index_file_ids(data_dir, "sightings"), referenced=referenced,
                   files=files, stray=[str(p.relative_to(data_dir)) for p in data_dir.rglob("*.tmp")])


# -- figures -----------------------------------------------------------------------------------

def percentiles(values: list[float], points: tuple[int, ...] = (50, 90, 99)) -> dict[str, float]:
    """Return the given percentiles and the maximum of ``values`` in milliseconds (nearest rank)."""
    if not values:
        return {}
    ordered = sorted(values)
    figures = {f"p{p}_ms": round(1000 * ordered[min(len(ordered) - 1, max(0, -(-p * len(ordered) // 100) - 1))], 1)
               for p in points}
    figures["max_ms"] = round(1000 * ordered[-1], 1)
    return figures


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Write ``figures`` with the machine's description to ``bench-results/<name>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    report = {"benchmark": name, "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "python": platform.python_version(), "cpus": os.cpu_count(),
              "machine": platform.processor() or platform.machine(), **figures}
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
