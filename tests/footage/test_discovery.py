"""Finding videos, camera names, recording start times and content hashes."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from footage.discovery import (
    StartSource,
    camera_name,
    content_hash,
    find_videos,
    parse_time,
    recording_start,
    time_from_name,
)
from tests.footage.synthetic import Walker, write_video


def test_folders_are_searched_recursively_by_extension(tmp_path: Path) -> None:
    (tmp_path / "cam1" / "day2").mkdir(parents=True)
    for name in ("cam1/b.mp4", "cam1/a.AVI", "cam1/day2/c.mkv", "cam1/notes.txt", "cam1/d.mov"):
        (tmp_path / name).write_bytes(b"x")
    found = find_videos([tmp_path / "cam1", tmp_path / "cam1" / "b.mp4"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "cam1/a.AVI", "cam1/b.mp4", "cam1/d.mov", "cam1/day2/c.mkv"]


def test_explicit_files_need_a_known_extension_or_to_open_in_opencv(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", [Walker(1, 0, 2, 10, 10)], 3)
    odd = video.rename(tmp_path / "clip.recording")
    assert find_videos([odd]) == [odd.resolve()]
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(ValueError, match="not a video OpenCV can open"):
        find_videos([text])
    with pytest.raises(FileNotFoundError, match="missing"):
        find_videos([tmp_path / "missing"])


def test_camera_defaults_to_the_folder_name(tmp_path: Path) -> None:
    path = tmp_path / "entrance" / "clip.mp4"
    assert camera_name(path) == "entrance"
    assert camera_name(path, "lobby") == "lobby"


@pytest.mark.parametrize(("name", "expected"), [
    ("cam1_2026-11-27T22-00-00.mp4", datetime(2026, 11, 27, 22, 0, 0, tzinfo=UTC)),
    ("20261127_220000.avi", datetime(2026, 11, 27, 22, 0, 0, tzinfo=UTC)),
    ("2026-11-27_22-00-05.mkv", datetime(2026, 11, 27, 22, 0, 5, tzinfo=UTC)),
    ("door 2026-11-27 22.30.00.mov", datetime(2026, 11, 27, 22, 30, 0, tzinfo=UTC)),
    ("x_2026-11-27T22:00:00+01:00.mp4",
     datetime(2026, 11, 27, 22, 0, 0, tzinfo=timezone(timedelta(hours=1)))),
    ("x_20261127T220000-0500.mp4",
     datetime(2026, 11, 27, 22, 0, 0, tzinfo=timezone(timedelta(hours=-5)))),
    ("20261327_220000.avi", None),  # month 13
    ("camera12.mp4", None),
])
def test_timestamps_in_file_names(name: str, expected: datetime | None) -> None:
    assert time_from_name(name) == expected


def test_start_prefers_explicit_then_name_then_modification_time(tmp_path: Path) -> None:
    named = tmp_path / "cam_20261127_220000.mp4"
    plain = tmp_path / "clip.mp4"
    for path in (named, plain):
        path.write_bytes(b"x")
    os.utime(plain, (1_800_000_000, 1_800_000_000))
    explicit = datetime(2026, 1, 2, 3, 4, 5)
    assert recording_start(named, explicit=explicit).time == explicit.replace(tzinfo=UTC)
    assert recording_start(named, explicit=explicit).source is StartSource.EXPLICIT
    assert recording_start(named).time == datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
    assert recording_start(named).source is StartSource.FILE_NAME
    by_mtime = recording_start(plain, duration_s=60.0)
    assert by_mtime.source is StartSource.MODIFICATION_TIME
    assert by_mtime.time == datetime.fromtimestamp(1_800_000_000 - 60, tz=UTC)


def test_parse_time_reads_naive_times_as_utc() -> None:
    assert parse_time("2026-11-27T22:00:00") == datetime(2026, 11, 27, 22, tzinfo=UTC)
    assert parse_time("2026-11-27T22:00:00+02:00").utcoffset() == timedelta(hours=2)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday")


def test_content_hash_streams_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    data = os.urandom(10_000)
    path.write_bytes(data)
    assert content_hash(path, chunk_size=1024) == hashlib.sha256(data).hexdigest()
