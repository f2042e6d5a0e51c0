"""Slow clients against the real ``reid serve``: they must not take the service offline.

Each slow connection sends a request a little at a time, on loopback only: half send a header
line per second (``GET /api/health`` that never ends), half send complete headers announcing a
1 MB body and then one body byte per second. The server must keep answering everyone else,
and must close such connections once their time is up.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.hardening.server import (
    Server,
    enroll,
    migrated_data_dir,
    percentiles,
    person_jpegs,
    request,
    search,
    top_person,
    write_results,
)

SLOW_CONNECTIONS = 50
ATTACK_SECONDS = 45.0
HEALTH_TIMEOUT = 5.0  # a health check not answered by then counts as this long


@dataclass
class SlowClients:
    """``count`` connections to ``port`` that each send one more line or byte per second, in one thread."""

    port: int
    count: int
    opened: int = 0
    closed_by_server: int = 0
    refused: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _connect(self, n: int) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2.0)
        except OSError:
            self.refused += 1
            return None
        if n % 2:  # headers, one line a second
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        else:  # a body, one byte a second
            sock.sendall(b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                         b"application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\n")
        sock.setblocking(False)
        self.opened += 1
        return sock

    def _run(self) -> None:
        sockets: list[socket.socket | None] = [self._connect(n) for n in range(self.count)]
        beat = 0
        while not self._stop.wait(1.0):
            beat += 1
            for n, sock in enumerate(sockets):
                if sock is not None:
                    try:
                        sock.send(f"X-Slow-{beat}: {beat}\r\n".encode() if n % 2 else b"a")
                        continue
                    except (BlockingIOError, InterruptedError):
                        continue  # its buffer is full: it is still open
                    except OSError:
                        self.closed_by_server += 1
                        sock.close()
                sockets[n] = self._connect(n)  # keep ``count`` connections open
        for sock in sockets:
            if sock is not None:
                sock.close()

    def __enter__(self) -> SlowClients:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``reid serve`` as the README runs it (2 workers x 4 threads), with one enrolled person."""
    running = Server(migrated_data_dir(tmp_path / "data"))
    running.start()
    try:
        status, _ = enroll(running.port, "Ann", person_jpegs(1, 2))
        assert status == 201
        yield running
    finally:
        running.stop()


def timed_health(port: int) -> float:
    """Return the seconds ``GET /api/health`` took (``HEALTH_TIMEOUT`` if unanswered or failed)."""
    started = time.monotonic()
    try:
        status, _ = request(port, "GET", "/api/health", timeout=HEALTH_TIMEOUT)
    except OSError:
        return HEALTH_TIMEOUT
    return time.monotonic() - started if status == 200 else HEALTH_TIMEOUT


@pytest.mark.slow
def test_slow_clients_do_not_take_the_service_offline(server: Server) -> None:
    health, searches = [], []
    query = person_jpegs(1, 3)[2]
    with SlowClients(server.port, SLOW_CONNECTIONS) as slow:
        time.sleep(2.0)  # let every slow connection get in
        deadline = time.monotonic() + ATTACK_SECONDS
        next_search = 0.0
        while time.monotonic() < deadline:
            health.append(timed_health(server.port))
            if time.monotonic() >= next_search:
                next_search = time.monotonic() + 3.0
                with contextlib.suppress(OSError):
                    status, answer = search(server.port, query, timeout=HEALTH_TIMEOUT)
                    searches.append(status == 200 and top_person(answer) is not None)
                    continue
                searches.append(False)
            time.sleep(0.2)
    figures = {"slow_connections": SLOW_CONNECTIONS, "seconds": ATTACK_SECONDS, "health_checks": len(health),
               "health": percentiles(health), "searches": len(searches), "searches_answered": sum(searches),
               "slow_opened": slow.opened, "slow_closed_by_server": slow.closed_by_server,
               "slow_refused": slow.refused}
    write_results("hardening-slow-clients", figures)
    assert slow.opened >= SLOW_CONNECTIONS, figures
    assert figures["health"]["p99_ms"] < 1000, figures
    assert searches and all(searches), figures


@pytest.mark.slow  # a real server waits out the client timeout
def test_slow_requests_are_cut_off(tmp_path: Path) -> None:
    """Headers or a body that trickle in are closed after ``REID_CLIENT_TIMEOUT`` (plus slack for the rate)."""
    running = Server(migrated_data_dir(tmp_path / "data"), workers=1, threads=2,
                     env={"REID_CLIENT_TIMEOUT": "2", "REID_MIN_UPLOAD_RATE": "100"})
    running.start()
    try:
        with SlowClients(running.port, 4) as slow:
            time.sleep(9.0)
        # each of the 4 was closed at about 2 s (+ its bytes / 100 B/s), then reopened, ...
        assert slow.closed_by_server >= 4, slow
        idle = socket.create_connection(("127.0.0.1", running.port), timeout=10.0)
        started = time.monotonic()
        assert idle.recv(1) == b""  # a connection that sends nothing is closed too
        assert time.monotonic() - started < 5.0
        idle.close()
        assert timed_health(running.port) < 1.0
    finally:
        running.stop()
