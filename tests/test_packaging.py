"""The wheel ships the code and the model the service loads, and no training artefacts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_WHEEL_BYTES = 30 * 1024 * 1024


def tracked_files() -> list[str]:
    """Return the repository's tracked files that exist in the working tree."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    return [name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


@pytest.mark.slow
def test_the_wheel_is_small_and_holds_the_shipped_model_but_no_checkpoints(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know the tracked files")
    source = tmp_path / "source"
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(source)], check=True)
    [wheel] = (tmp_path / "dist").glob("reid-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert wheel.stat().st_size < MAX_WHEEL_BYTES, f"{wheel.name} is {wheel.stat().st_size / 2**20:.1f} MiB"
    assert "embedder/models/reid-mobilenetv2/model.keras" in names
    assert "embedder/models/reid-mobilenetv2/metadata.json" in names
    assert "embedder/models/reid-mobilenetv2/model.xml" in names
    assert "embedder/models/reid-mobilenetv2/model.bin" in names
    assert not [name for name in names if name.endswith((".npz", ".h5")) or "checkpoints/" in name]
    assert "base/images.py" in names and not [name for name in names if name.startswith("tests/")]
