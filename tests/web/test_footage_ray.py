"""``reid index-footage --ray`` (and REID_RAY_ADDRESS) on a real local Ray cluster; without it, no Ray."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gallery.db import make_engine
from gallery.models import Video
from tests.conftest import PROJECT_ROOT
from tests.footage.conftest import FRAMES, WALKERS
from tests.footage.synthetic import Walker, write_video
from tests.hardening.server import kill_group, reid_command, reid_env
from tests.ray_cluster import LocalCluster
from web.cli import cli

ENV = {"REID_DETECTOR": "tests.footage.synthetic:ColourDetector",
       "REID_EMBEDDER": "tests.conftest:ThumbnailEmbedder", "REID_MATCH_THRESHOLD": "0.9"}
INDEXED = "INFO gallery.footage_indexing: indexed "  # the indexer's log line after each stored video


@pytest.fixture
def site(data_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in {**ENV, "REID_DATA_DIR": str(data_dir), "REID_DATABASE_URL": database_url}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("REID_RAY_ADDRESS", raising=False)
    return data_dir


def stored_videos(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return sorted(connection.scalars(sa.select(Video.sha256)))
    finally:
        engine.dispose()


def refused_address() -> tuple[socket.socket, str]:
    """Return a bound socket that listens to nothing (connections are refused) and its address."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.slow
def test_ray_option_and_setting(ray_cluster: LocalCluster, site: Path, tmp_path: Path, runner: CliRunner,
                                database_url: str, monkeypatch: pytest.MonkeyPatch,
                                caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "recordings" / "lobby"
    folder.mkdir(parents=True)
    write_video(folder / "first.avi", WALKERS, FRAMES)
    caplog.set_level(logging.INFO, logger="footage.cluster")
    first = runner.invoke(cli, ["index-footage", str(folder.parent), "--ray", ray_cluster.address, "--fps", "5"])
    assert first.exit_code == 0, first.output
    assert "1 found, 1 indexed" in first.output and "2 tracks" in first.output
    assert "analysing 1 videos on 1 Ray workers" in caplog.text

    caplog.clear()
    write_video(folder / "second.avi", [Walker(7, 0, 30, 30, 90, dx=6)], 40)
    monkeypatch.setenv("REID_RAY_ADDRESS", ray_cluster.address)
    second = runner.invoke(cli, ["index-footage", str(folder.parent), "--fps", "5"])
    assert second.exit_code == 0, second.output
    assert "2 found, 1 indexed, 1 already indexed" in second.output
    assert "analysing 1 videos on 1 Ray workers" in caplog.text
    assert len(stored_videos(database_url)) == 2


def test_an_unreachable_cluster_is_named(site: Path, tmp_path: Path, runner: CliRunner,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "recordings").mkdir()
    write_video(tmp_path / "recordings" / "clip.avi", WALKERS, 20)
    sock, address = refused_address()
    with sock:
        monkeypatch.setenv("REID_RAY_ADDRESS", address)
        began = time.monotonic()
        result = runner.invoke(cli, ["index-footage", str(tmp_path / "recordings")])
    assert result.exit_code == 1 and f"no Ray cluster answers at {address}" in result.output, result.output
    assert time.monotonic() - began < 10
    monkeypatch.setenv("REID_RAY_ADDRESS", "")
    empty = runner.invoke(cli, ["index-footage", str(tmp_path / "recordings")])
    assert empty.exit_code == 1 and "REID_RAY_ADDRESS" in empty.output, empty.output


def test_without_ray_nothing_imports_it(data_dir: Path, database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "recordings" / "gate"
    folder.mkdir(parents=True)
    write_video(folder / "clip.avi", WALKERS, 20)
    script = ("import sys\nfrom web.cli import main\ntry:\n    main()\nexcept SystemExit as exit:\n"
              "    assert exit.code in (0, None), exit.code\n"
              "print('ray modules:', sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))\n")
    env = reid_env(**ENV, REID_DATABASE_URL=database_url)
    command = [sys.executable, "-c", script, "--data-dir", str(data_dir),
               "index-footage", str(folder.parent), "--workers", "1", "--fps", "5"]
    run = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "1 found, 1 indexed" in run.stdout and "ray modules: []" in run.stdout, run.stdout


@pytest.mark.slow
def test_a_killed_driver_loses_only_videos_in_flight(ray_cluster: LocalCluster, ray_markers: Path, data_dir: Path,
                                                     database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "recordings" / "gate"
    folder.mkdir(parents=True)
    for k in range(4):
        write_video(folder / f"clip{k}.avi", [Walker(70 + k, 0, 35, 10, 40 + 30 * k, dx=7)], 40)
    env = reid_env(**{**ENV, "REID_DETECTOR": "tests.ray_cluster:SlowColourDetector"},
                   REID_DATABASE_URL=database_url, REID_RAY_ADDRESS=ray_cluster.address)
    command = reid_command(data_dir, "index-footage", str(folder.parent), "--fps", "5")
    log_path = tmp_path / "index.log"
    with open(log_path, "w") as log:
        driver = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while INDEXED not in log_path.read_text(errors="replace") and driver.poll() is None:
        assert time.monotonic() < deadline, log_path.read_text()[-2000:]
        time.sleep(0.02)
    kill_group(driver)  # the driver: the Ray workers are the cluster's processes, and end with its job
    first = stored_videos(database_url)
    assert 1 <= len(first) < 4, log_path.read_text()[-2000:]

    again = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"4 found, {4 - len(first)} indexed, {len(first)} already indexed" in again.stdout, again.stdout
    final = stored_videos(database_url)
    assert len(final) == len(set(final)) == 4 and set(first) <= set(final)
