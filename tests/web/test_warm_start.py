"""A worker runs its models once before it serves, so the first request costs what later ones do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from base.images import BGRImage
from tests.conftest import ThumbnailEmbedder
from web import create_app
from web.server import warm_up


class CountingEmbedder(ThumbnailEmbedder):
    """The test embedder, counting the batches it embeds."""

    batches = 0

    def _embed(self, images: Sequence[BGRImage]) -> np.ndarray:
        CountingEmbedder.batches += 1
        return super()._embed(images)


def test_warm_up_runs_the_embedder_before_any_request(data_dir: Path, database_url: str) -> None:
    app = create_app({"DATA_DIR": str(data_dir), "DATABASE_URL": database_url,
                      "EMBEDDER": "tests.web.test_warm_start:CountingEmbedder", "DETECTOR": "none"})
    CountingEmbedder.batches = 0
    warm_up(app)
    assert CountingEmbedder.batches == 1
    assert app.test_client().get("/api/health").json["model_id"] == CountingEmbedder.model_id
    app.extensions["reid"].engine.dispose()
