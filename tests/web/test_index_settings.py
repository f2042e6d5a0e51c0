"""REID_ANN_THRESHOLD: checked at start-up, handed to both indexes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gallery.uploads import Upload
from tests.conftest import jpeg_bytes, person_image
from web import create_app
from web.settings import SettingsError, load_settings


def test_a_bad_threshold_is_named() -> None:
    with pytest.raises(SettingsError, match="REID_ANN_THRESHOLD"):
        load_settings({"ANN_THRESHOLD": 0})


def test_the_threshold_reaches_both_indexes(data_dir: Path, database_url: str) -> None:
    app = create_app({"TESTING": True, "DATA_DIR": str(data_dir), "DATABASE_URL": database_url,
                      "EMBEDDER": "test-thumbnail", "DETECTOR": "none", "ANN_THRESHOLD": 3})
    state = app.extensions["reid"]
    try:
        with state.sessions() as session:
            gallery = state.gallery
            person = gallery.enroll(session, "a", [Upload(jpeg_bytes(person_image(1, v)), f"{v}.jpg")
                                                   for v in range(4)])
            index = gallery.index(session)
            assert index.ann_threshold == 3 and index.layout.startswith("ivf")
            assert gallery.sightings.index(session).ann_threshold == 3
            (result,) = gallery.search(session, person_image(1, 5), top_k=1, threshold=0.5).results
            assert result.matches[0].person_id == person.id
    finally:
        state.engine.dispose()
