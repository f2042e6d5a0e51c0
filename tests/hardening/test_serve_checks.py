"""What ``reid serve`` checks before it serves: the sockets gunicorn bound in open mode, the index paths."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.hardening.server import Server, migrated_data_dir
from web.server import WORKER_CLASS, ReidServer


class Listener:
    """A gunicorn listener as the arbiter holds it, around a socket that is not bound anywhere."""

    def __init__(self, family: socket.AddressFamily, address: object) -> None:
        self.sock = self
        self.family = family
        self.address = address

    def getsockname(self) -> object:
        return self.address


class Arbiter:
    """The part of gunicorn's arbiter that ``when_ready`` uses."""

    def __init__(self, *listeners: Listener) -> None:
        self.LISTENERS = list(listeners)
        self.reason: str | None = None

    def halt(self, reason: str | None = None, exit_status: int = 0) -> None:
        self.reason = reason
        raise SystemExit(exit_status)


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> ReidServer:
    """The master's configuration when GUNICORN_CMD_ARGS asks for all interfaces (nothing is bound here)."""
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--bind 0.0.0.0:5098 --worker-class sync")
    server = ReidServer({"bind": "127.0.0.1:5000", "worker_class": WORKER_CLASS}, open_mode=True)
    assert server.cfg.bind == ["0.0.0.0:5098"]
    assert server.cfg.worker_class_str == WORKER_CLASS  # the buffering worker cannot be swapped out
    return server


def test_open_mode_refuses_the_sockets_actually_bound(configured: ReidServer) -> None:
    arbiter = Arbiter(Listener(socket.AF_INET, ("127.0.0.1", 5000)), Listener(socket.AF_INET, ("0.0.0.0", 5098)))
    with pytest.raises(SystemExit) as stopped:
        configured.cfg.when_ready(arbiter)
    assert stopped.value.code == 1
    assert arbiter.reason is not None and "refusing to listen on 0.0.0.0" in arbiter.reason


@pytest.mark.parametrize("address", [("127.0.0.1", 5000), ("::1", 5000, 0, 0), "/run/reid.sock"])
def test_open_mode_allows_this_machine(configured: ReidServer, address: object) -> None:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET6 if len(address) == 4 else socket.AF_INET
    arbiter = Arbiter(Listener(family, address))
    configured.cfg.when_ready(arbiter)
    assert arbiter.reason is None


def test_with_access_control_any_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--bind 0.0.0.0:5098")
    server = ReidServer({"bind": "127.0.0.1:5000"}, open_mode=False)
    arbiter = Arbiter(Listener(socket.AF_INET, ("0.0.0.0", 5098)))
    server.cfg.when_ready(arbiter)
    assert arbiter.reason is None


def test_a_folder_in_place_of_the_index_file_stops_start_up_by_name(tmp_path: Path) -> None:
    data_dir = migrated_data_dir(tmp_path / "data")
    folder = data_dir / "index" / "gallery-test-thumbnail-v1.faiss"
    folder.mkdir(parents=True)
    server = Server(data_dir, workers=1, threads=1)
    server.spawn()
    assert server.process is not None
    try:
        code = server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        raise
    server.process = None
    log = server.log_tail()
    assert code != 0, log
    assert f"{folder} is not a regular file" in log and "Traceback" not in log, log

