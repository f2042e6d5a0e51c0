"""Operators' reviews of footage sightings: rejected hidden for the person, confirmed first, labels for adapting."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from gallery.adaptation import review_labels
from gallery.errors import InvalidInput, NotFound
from gallery.models import AuditEntry, Sighting
from gallery.service import Gallery
from tests.conftest import ThumbnailEmbedder
from tests.footage.conftest import WALKERS
from tests.footage.synthetic import ColourDetector, pattern
from tests.gallery.test_footage_indexing import run, walker_crop

pytestmark = pytest.mark.both_databases


@pytest.fixture
def gallery(data_dir: Path) -> Gallery:
    return Gallery(data_dir, ThumbnailEmbedder(), ColourDetector(), link_threshold=0.9)


def test_reviews_hide_rejected_and_put_confirmed_first(sessions, gallery, recordings) -> None:
    run(sessions, gallery, recordings)
    with sessions() as session:
        person = gallery.enroll(session, "walker 0", [walker_crop(0)])
        (linked,) = gallery.sightings.for_person(session, person.id, 0.9)
        other = session.scalars(sa.select(Sighting.id).where(Sighting.id != linked.sighting.id)).one()
        (result,) = gallery.search(session, pattern(WALKERS[0].pattern), top_k=1, threshold=0.9).results
        assert [h.sighting_id for h in result.sightings] == [linked.sighting.id]

        gallery.sightings.review(session, person.id, other, True, actor="user:olga")  # an operator knows better
        shown = gallery.sightings.for_person(session, person.id, 0.9, order="score")
        assert [(s.sighting.id, s.confirmed, s.score is None) for s in shown] == [
            (other, True, True), (linked.sighting.id, False, False)]

        gallery.sightings.review(session, person.id, linked.sighting.id, False, actor="user:olga")
        assert [s.sighting.id for s in gallery.sightings.for_person(session, person.id, 0.9)] == [other]
        (result,) = gallery.search(session, pattern(WALKERS[0].pattern), top_k=1, threshold=0.9).results
        assert result.sightings == []  # rejected for the person the still matches

        audited = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "review_sighting")).all()
        assert [(e.actor, e.target) for e in audited] == [("user:olga", f"person:{person.id}")] * 2
        labels = review_labels(session, gallery.sightings.store.root, gallery.embedder.model_id)
        assert {i.person for i in labels.confirmed + labels.rejected} == {f"person-{person.id}"}
        assert labels.confirmed and labels.rejected and all(i.path.is_file() for i in labels.confirmed)

        with pytest.raises(NotFound, match="no sighting has id 999"):
            gallery.sightings.review(session, person.id, 999, True)
        with pytest.raises(InvalidInput, match="order must be one of time, score"):
            gallery.sightings.for_person(session, person.id, 0.9, order="name")
        gallery.delete_person(session, person.id)  # their reviews go with them
        assert review_labels(session, gallery.sightings.store.root, gallery.embedder.model_id).confirmed == []
