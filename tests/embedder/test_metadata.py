"""The model directory's metadata file."""

from __future__ import annotations

import json
from pathlib import Path

from embedder.metadata import METADATA_FILE, ModelMetadata


def test_metadata_round_trips_through_its_file(tmp_path: Path) -> None:
    written = ModelMetadata(model_id="m", input_size=(256, 128), embedding_dim=8, flip_average=True,
                            center_crops=(0.94, 0.84), threshold=0.6)
    written.save(tmp_path)
    assert ModelMetadata.load(tmp_path) == written


def test_a_file_with_one_center_crop_reads_as_one_view(tmp_path: Path) -> None:
    ModelMetadata(model_id="m", input_size=(8, 4), embedding_dim=2).save(tmp_path)
    data = json.loads((tmp_path / METADATA_FILE).read_text())
    del data["center_crops"]
    (tmp_path / METADATA_FILE).write_text(json.dumps({**data, "center_crop": 0.89}))
    assert ModelMetadata.load(tmp_path).center_crops == (0.89,)
    (tmp_path / METADATA_FILE).write_text(json.dumps(data))
    assert ModelMetadata.load(tmp_path).center_crops == (1.0,)
