"""The index files are checked at load: altered vectors or ids are rebuilt, a folder in their way is named."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from detector.registry import build_detector
from gallery.models import Embedding, Image, Person
from gallery.service import Gallery
from gallery.uploads import Upload
from gallery.vector_index import IndexPathError, VectorIndex, unusable_index_paths
from tests.conftest import ThumbnailEmbedder, jpeg_bytes, person_image


def restarted(data_dir: Path) -> Gallery:
    """A Gallery as a freshly started worker has it: the index is read from its file on first use."""
    return Gallery(data_dir, ThumbnailEmbedder(), build_detector("none"), link_threshold=0.9)


def best(gallery: Gallery, session: Session, person: int) -> tuple[int, float]:
    (result,) = gallery.search(session, person_image(person, 0), top_k=2, threshold=0.5).results
    return result.matches[0].person_id, result.matches[0].score


def swap_two_vectors(path: Path, first: bytes, second: bytes) -> None:
    """Swap the bytes of two vectors where they are stored in ``path``, ids left as they were."""
    data = path.read_bytes()
    at, other = data.index(first), data.index(second)
    swapped = bytearray(data)
    swapped[at:at + len(first)], swapped[other:other + len(second)] = second, first
    path.write_bytes(bytes(swapped))


def vector_bytes(session: Session, *persons: Person) -> list[bytes]:
    return [session.scalars(sa.select(Embedding.vector).join(Image).where(Image.person_id == person.id)).one()
            for person in persons]


@pytest.mark.parametrize("where", ["snapshot", "log"])
def test_swapped_vectors_are_caught_at_load_and_rebuilt(session: Session, data_dir: Path, where: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    gallery = restarted(data_dir)
    ann = gallery.enroll(session, "Ann", [Upload(jpeg_bytes(person_image(1, 0)), "ann.jpg")])
    bob = gallery.enroll(session, "Bob", [Upload(jpeg_bytes(person_image(2, 0)), "bob.jpg")])
    gallery.enroll(session, "Cy", [Upload(jpeg_bytes(person_image(3, 0)), "cy.jpg")])
    assert best(gallery, session, 1)[0] == ann.id
    index = gallery.index(session)
    if where == "snapshot":
        index.save()  # the log folded into the snapshot
    path = index.path if where == "snapshot" else index.log_path
    swap_two_vectors(path, *vector_bytes(session, ann, bob))
    assert VectorIndex(path.parent, "gallery", ThumbnailEmbedder.model_id, ThumbnailEmbedder.dim).load() is False

    with caplog.at_level(logging.INFO):
        person, score = best(restarted(data_dir), session, 1)
    assert person == ann.id != bob.id and score > 0.99
    assert ("does not match the checksum" if where == "snapshot" else "damaged or altered") in caplog.text
    assert "rebuilding gallery-" in caplog.text
    assert VectorIndex(path.parent, "gallery", ThumbnailEmbedder.model_id, ThumbnailEmbedder.dim).load()


def test_an_index_without_its_checksum_is_rebuilt(session: Session, data_dir: Path) -> None:
    gallery = restarted(data_dir)
    gallery.enroll(session, "Ann", [Upload(jpeg_bytes(person_image(1, 0)), "ann.jpg")])
    index = gallery.index(session)
    index.checksum_path.unlink()
    assert VectorIndex(index.path.parent, "gallery", index.model_id, index.dim).load() is False
    assert len(restarted(data_dir).index(session)) == 1
    assert index.checksum_path.is_file()


def test_a_folder_in_place_of_the_index_file_is_named(session: Session, data_dir: Path) -> None:
    gallery = restarted(data_dir)
    path = VectorIndex(data_dir / "index", "gallery", ThumbnailEmbedder.model_id, ThumbnailEmbedder.dim).path
    path.mkdir(parents=True)
    assert unusable_index_paths(data_dir / "index") == [
        f"{path} is not a regular file: move it away (the index is rebuilt from the database)"]
    with pytest.raises(IndexPathError, match=f"{path} is not a regular file"):
        gallery.index(session)
