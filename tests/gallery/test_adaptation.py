"""reid adapt's data and loop: footage crops labelled by mined identity, then a real model adapted to them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from embedder.metadata import ModelMetadata
from embedder.registry import build_embedder
from embedder.training.adapt import adapt_model
from embedder.training.config import AdaptConfig
from embedder.training.export import export
from embedder.training.model import build_reid_net
from gallery.adaptation import footage_training_crops
from gallery.footage_indexing import index_footage
from gallery.service import Gallery
from tests.conftest import ThumbnailEmbedder
from tests.footage.conftest import SETTINGS, WALKERS
from tests.footage.synthetic import ColourDetector

DETECTOR = "tests.footage.synthetic:ColourDetector"
START = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)




def index_with(sessions: sessionmaker[Session], data_dir: Path, embedder_spec: str, recordings: Path) -> Gallery:
    embedder = build_embedder(embedder_spec)
    gallery = Gallery(data_dir, embedder, ColourDetector(), link_threshold=0.9)
    index_footage(sessions, gallery, [recordings], detector_spec=DETECTOR, embedder_spec=embedder_spec,
                  settings=SETTINGS, start=START, workers=1, show_progress=False)
    return gallery


def test_each_walkers_crops_share_one_label_and_walkers_differ(sessions, data_dir, recordings) -> None:
    gallery = index_with(sessions, data_dir, "tests.conftest:ThumbnailEmbedder", recordings)
    with sessions() as session:
        crops = footage_training_crops(session, gallery.sightings.store.root, ThumbnailEmbedder().model_id, 0.99)
        assert footage_training_crops(session, gallery.sightings.store.root, "another-model", 0.99) == []
    assert crops and all(item.path.is_file() for item in crops)
    labels = {item.person for item in crops}
    assert len(labels) == len(WALKERS)  # the synthetic walkers cross the view together, once each
    assert all(label.startswith("track-") for label in labels)


@pytest.mark.slow
def test_adapt_writes_a_new_model_that_the_service_loads(sessions, data_dir, recordings, tmp_path) -> None:
    keras.utils.set_random_seed(0)
    net = build_reid_net(4, (64, 32), pretrained=False, distill_dims=8)
    metadata = ModelMetadata(model_id="tiny-reid-0123456789ab", input_size=(64, 32), embedding_dim=8,
                             threshold=0.5)
    model_dir = export(net.inference_model(), tmp_path / "model", metadata)
    gallery = index_with(sessions, data_dir, str(model_dir), recordings)
    with sessions() as session:
        crops = footage_training_crops(session, gallery.sightings.store.root, metadata.model_id, 0.99)

    adapted = adapt_model(model_dir, tmp_path / "adapted", crops,
                          config=AdaptConfig(steps=3, bn_batches=2, persons=4, per_person=2), progress=False)
    assert adapted.model_id.startswith("tiny-reid-adapted-") and adapted.model_id != metadata.model_id
    assert adapted.recipe["adaptation"]["pseudo_identities"] == len({item.person for item in crops})
    assert adapted.threshold == 0.5 and adapted.validation == {"threshold_inherited_from": metadata.model_id}
    images = [np.random.default_rng(i).integers(0, 256, (90, 40, 3), dtype=np.uint8) for i in range(4)]
    before, after = build_embedder(str(model_dir)), build_embedder(str(tmp_path / "adapted"))
    assert after.model_id == adapted.model_id
    assert not np.allclose(before.embed(images), after.embed(images), atol=1e-4)  # the weights moved
