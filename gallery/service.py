"""Enroll, search and delete: the one place that keeps rows, files and vectors in step."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from base.images import BGRImage, decode_image
from detector.base import Detection, Detector
from embedder.base import Embedder
from gallery import audit
from gallery.db import release_erased
from gallery.errors import AlreadyEnrolled, Conflict, InvalidInput, NotFound
from gallery.image_store import ImageStore
from gallery.index_sync import SharedIndex, raise_generation, sync_index
from gallery.lookup import get_or_not_found
from gallery.models import Embedding, Image, Person, SightingMatch, pack_vector
from gallery.person_crops import PersonCrop, take_person_crops
from gallery.ranking import PersonMatch, best_per_person, decide
from gallery.saved_searches import SEARCH_RETENTION, SavedSearches, StillQueries
from gallery.sightings import SightingHit, Sightings, apply_reviews
from gallery.uploads import (
    MAX_PIXELS,
    MAX_REQUEST_PIXELS,
    MIN_HEIGHT,
    MIN_WIDTH,
    CheckedImage,
    DecodeBudget,
    Upload,
    check_images,
    clean_idempotency_key,
    clean_name,
    clean_notes,
    safe_filename,
)
from gallery.vector_index import ANN_THRESHOLD, VectorIndex

log = logging.getLogger(__name__)

MAX_TOP_K = 100


@dataclass(frozen=True)
class QueryResult:
    """The candidates for one person found in a still (``bbox`` None: the whole image)."""

    bbox: list[int] | None
    detection_score: float | None
    matches: list[PersonMatch]
    margin: float | None
    sightings: list[SightingHit]

    @property
    def whole_image(self) -> bool:
        """Return whether this query is the whole still, searched because nobody was detected."""
        return self.bbox is None

    def to_dict(self) -> dict:
        return {"bbox": self.bbox, "whole_image": self.whole_image,
                "detection_score": self.detection_score,
                "margin": None if self.margin is None else round(self.margin, 6),
                "matches": [m.to_dict() for m in self.matches],
                "sightings": [h.to_dict() for h in self.sightings]}


@dataclass(frozen=True)
class SearchResponse:
    """Everything one search by a still found, and the settings it used.

    ``detected`` is the number of persons the detector found; with none, the one result is
    the whole still (``QueryResult.whole_image``).
    """

    threshold: float
    top_k: int
    model_id: str
    detector_id: str
    detected: int
    results: list[QueryResult]
    search_id: int | None = None  # the stored search ranked, if it was one

    def to_dict(self) -> dict:
        return {"search_id": self.search_id, "threshold": self.threshold, "top_k": self.top_k,
                "model_id": self.model_id, "detector_id": self.detector_id, "detected": self.detected,
                "results": [r.to_dict() for r in self.results]}


class PersonSummary(NamedTuple):
    """A person as listed: their image count and first image (None: they have none left)."""

    person: Person
    images: int
    first_image_id: int | None


@dataclass
class DeletionReceipt:
    """What a delete removed (for a person: the erasure receipt)."""

    persons: int = 0
    images: list[int] = field(default_factory=list)
    vectors: int = 0
    files: int = 0
    links: int = 0  # links to footage sightings (a person's; an image has none of its own)
    searches: int = 0  # stored searches made with one of the images

    def to_dict(self) -> dict:
        receipt = {"persons": self.persons, "images": self.images,
                   "vectors": self.vectors, "files": self.files, "searches": self.searches}
        return {**receipt, "links": self.links} if self.persons else receipt


class Gallery:
    """Persons, their images and vectors: the database is the truth, FAISS a rebuildable copy.

    Sessions are passed in by the caller, one per request or command. ``link_threshold`` is
    the score at which enrolled persons are linked to footage sightings; ``max_pixels`` is the
    most pixels an uploaded image's header may claim (None: no limit), ``max_request_pixels``
    the most all images of one request may claim together, and ``max_concurrent_decodes``
    how many such requests' pixels this process holds decoded at once (``decodes``). Stored
    searches are kept for ``search_retention``.
    """

    def __init__(self, data_dir: Path, embedder: Embedder, detector: Detector, *,
                 link_threshold: float, min_width: int = MIN_WIDTH, min_height: int = MIN_HEIGHT,
                 detector_min_score: float | None = None, sightings_per_query: int = 20,
                 max_pixels: int | None = MAX_PIXELS, max_request_pixels: int | None = MAX_REQUEST_PIXELS,
                 max_concurrent_decodes: int = 2, ann_threshold: int = ANN_THRESHOLD,
                 search_retention: timedelta = SEARCH_RETENTION) -> None:
        self.data_dir = Path(data_dir)
        self.store = ImageStore(self.data_dir / "images")
        self.embedder = embedder
        self.detector = detector
        self.min_width = min_width
        self.min_height = min_height
        self.max_pixels = max_pixels
        self.decodes = DecodeBudget(max_request_pixels, max_concurrent_decodes, max_image_pixels=max_pixels)
        self.detector_min_score = detector_min_score
        self.link_threshold = link_threshold
        self.sightings_per_query = sightings_per_query
        self.sightings = Sightings(self.data_dir, embedder.model_id, embedder.dim, ann_threshold=ann_threshold)
        self.searches = SavedSearches(self.data_dir, search_retention)
        self._vectors = SharedIndex(
            self.data_dir / "index", "gallery", embedder.model_id, embedder.dim,
            sa.select(Embedding.image_id, Embedding.vector).where(Embedding.model_id == embedder.model_id),
            prepare=self._embed_missing, ann_threshold=ann_threshold)

    # -- the index ---------------------------------------------------------------------------

    def index(self, session: Session) -> VectorIndex:
        """Return the vector index as of the latest committed write of any process.

        On first use, and whenever another process has changed the gallery since (the
        ``gallery`` generation differs), it is read from its file or rebuilt from the database.
        """
        return self._vectors.current(session)

    def sync_index(self, session: Session, index: VectorIndex) -> bool:
        """Embed images that lack a vector of this model, then make ``index`` match the database.

        Returns:
            Whether the index was rebuilt rather than read from its file.
        """
        self._embed_missing(session)
        return sync_index(session, index, self._vectors.rows)

    def _embed_missing(self, session: Session, batch_size: int = 64) -> None:
        """Embed stored images that have no vector from the current model (after a model change)."""
        model_id = self.embedder.model_id
        has_vector = sa.select(Embedding.id).where(
            Embedding.image_id == Image.id, Embedding.model_id == model_id).exists()
        missing = session.scalars(sa.select(Image).where(~has_vector).order_by(Image.id)).all()
        if missing:
            log.info("embedding %d stored images with model %s", len(missing), model_id)
        for start in range(0, len(missing), batch_size):
            batch = missing[start:start + batch_size]
            images = [decode_image(self.store.read(image.stored_path)) for image in batch]
            for image, vector in zip(batch, self.embedder.embed(images)):
                session.add(Embedding(image_id=image.id, model_id=model_id,
                                      dim=self.embedder.dim, vector=pack_vector(vector)))
            raise_generation(session, "gallery")
            session.commit()

    def remove_orphan_files(self, session: Session) -> int:
        """Delete image files no row refers to (left by a process killed before its commit)."""
        with self._vectors.writing(session):  # no write is between its files and its commit
            removed = self.store.remove_unreferenced(self._referenced_files(session))
        if removed:
            log.info("removed %d image files left by an interrupted write", removed)
        return removed

    # -- reading -----------------------------------------------------------------------------

    def list_persons(self, session: Session, name_contains: str | None = None) -> list[PersonSummary]:
        """Return every person (whose name contains ``name_contains``, ignoring case), newest first."""
        counts = (sa.select(Image.person_id, sa.func.count(Image.id).label("n"),
                            sa.func.min(Image.id).label("first"))
                  .group_by(Image.person_id).subquery())
        query = (sa.select(Person, sa.func.coalesce(counts.c.n, 0), counts.c.first)
                 .outerjoin(counts, counts.c.person_id == Person.id).order_by(Person.id.desc()))
        if name_contains:
            query = query.where(Person.name.icontains(name_contains, autoescape=True))
        return [PersonSummary(person, int(n), first) for person, n, first in session.execute(query).all()]

    def get_person(self, session: Session, person_id: int) -> Person:
        """Return a person with their images loaded.

        Raises:
            NotFound: no person has that id.
        """
        return get_or_not_found(session, Person, person_id, "person", (selectinload(Person.images),))

    def get_image(self, session: Session, image_id: int) -> Image:
        """Return an image row.

        Raises:
            NotFound: no image has that id.
        """
        return get_or_not_found(session, Image, image_id, "image")

    # -- writing -----------------------------------------------------------------------------

    def enroll(self, session: Session, name: str | None, uploads: list[Upload], *,
               notes: str | None = None, source: str = "upload", actor: str = audit.SYSTEM,
               force: bool = False, keep_original: bool = False, idempotency_key: str | None = None) -> Person:
        """Create a person with their images; nothing is stored if any input is refused.

        Each upload must hold exactly one person, whose box is enrolled
        (``gallery.person_crops``); ``force`` enrolls the uploads whole instead, and
        ``keep_original`` keeps each upload beside its crop, for audit. An ``idempotency_key``
        that an earlier enrollment carried enrolls nobody: ``AlreadyEnrolled`` names that person.

        Raises:
            AlreadyEnrolled: the key's enrollment was done before (or meanwhile, by another request).
            NotOnePerson: an upload with no person or several (and not ``force``).
            InvalidInput: bad name, notes, or any unusable image.
            TooLarge: the images claim more pixels together than one request may decode.
            Busy: other requests' images took the process's decoding budget for too long.
        """
        key = None if idempotency_key is None else clean_idempotency_key(idempotency_key)
        _raise_if_enrolled(session, key)
        person = Person(name=clean_name(name), notes=clean_notes(notes), enroll_key=key)
        with self.decodes.hold(uploads):
            crops = self._person_crops(self._check(uploads), force)
            session.add(person)
            try:
                self._attach(session, person, crops, source, actor=actor, action="enroll",
                             force=force, keep_original=keep_original)
            except AlreadyEnrolled:
                session.rollback()
                raise
        return person

    def add_images(self, session: Session, person_id: int, uploads: list[Upload], *,
                   source: str = "upload", actor: str = audit.SYSTEM, force: bool = False,
                   keep_original: bool = False) -> list[Image]:
        """Enroll more images of an existing person; ``force`` and ``keep_original`` as for ``enroll``.

        Raises:
            NotFound: unknown person. InvalidInput: an unusable image.
            NotOnePerson: an upload with no person or several (and not ``force``).
            Conflict: an image this person already has.
            TooLarge, Busy: as for ``enroll``.
        """
        person = self.get_person(session, person_id)
        with self.decodes.hold(uploads):
            crops = self._person_crops(self._check(uploads), force)
            return self._attach(session, person, crops, source, actor=actor, action="add_images",
                                force=force, keep_original=keep_original)

    def delete_person(self, session: Session, person_id: int, *, actor: str = audit.SYSTEM) -> DeletionReceipt:
        """Erase a person: their row, images, files, vectors, links to footage sightings, and the
        digests of searches made with one of their images.

        Raises:
            NotFound: unknown person.
        """
        with self._vectors.writing(session):
            person = self.get_person(session, person_id)
            images = list(person.images)
            receipt = self._count_vectors(session, images)
            receipt.links = int(session.scalar(sa.select(sa.func.count()).select_from(SightingMatch)
                                               .where(SightingMatch.person_id == person_id)) or 0)
            session.delete(person)
            stills = self._forget_searches(session, images, receipt)
            audit.record(session, actor, "delete_person", target=f"person:{person_id}",
                         image_ids=receipt.images, vectors=receipt.vectors, links=receipt.links,
                         searches=receipt.searches)
            self._vectors.commit(session)
            receipt.persons = 1
            self._forget(session, images, receipt)
            receipt.files += self.searches.remove_files(session, stills)
        release_erased(session)
        return receipt

    def delete_image(self, session: Session, image_id: int, *, actor: str = audit.SYSTEM) -> DeletionReceipt:
        """Delete one image with its file and vectors.

        Raises:
            NotFound: unknown image.
        """
        with self._vectors.writing(session):
            image = self.get_image(session, image_id)
            receipt = self._count_vectors(session, [image])
            session.delete(image)
            stills = self._forget_searches(session, [image], receipt)
            audit.record(session, actor, "delete_image", target=f"image:{image_id}",
                         person_id=image.person_id, vectors=receipt.vectors, searches=receipt.searches)
            self._vectors.commit(session)
            self._forget(session, [image], receipt)
            receipt.files += self.searches.remove_files(session, stills)
            return receipt

    def _forget_searches(self, session: Session, images: list[Image], receipt: DeletionReceipt) -> list[str]:
        """Delete the searches made with one of ``images`` (their digests, stored searches), uncommitted.

        Returns:
            The stored searches' stills, to remove once the deletion is committed.
        """
        digests = _digests(images)
        audit.forget_digests(session, digests)
        stills = self.searches.forget(session, digests)
        receipt.searches = len(stills)
        return stills

    def _check(self, uploads: list[Upload]) -> list[CheckedImage]:
        return check_images(uploads, min_width=self.min_width, min_height=self.min_height,
                            max_pixels=self.max_pixels)

    def _person_crops(self, checked: list[CheckedImage], force: bool) -> list[PersonCrop]:
        return take_person_crops(checked, self.detector, min_score=self.detector_min_score,
                                 min_width=self.min_width, min_height=self.min_height, force=force)

    def same_name(self, session: Session, name: str, *, other_than: int | None = None) -> list[int]:
        """Return the ids of persons named ``name`` (ignoring case and outer blanks), but ``other_than``."""
        query = sa.select(Person.id).where(sa.func.lower(Person.name) == name.strip().lower())
        if other_than is not None:
            query = query.where(Person.id != other_than)
        return list(session.scalars(query.order_by(Person.id)))

    def _attach(self, session: Session, person: Person, crops: list[PersonCrop],
                source: str, *, actor: str, action: str, force: bool, keep_original: bool) -> list[Image]:
        """Store files, rows, vectors, links to footage and the audit entry in one transaction.

        Files, commit and index change happen under the gallery's write lock, so the index file
        is saved after the commit by the one process whose copy matches the database. The
        footage lock, held too, keeps sightings from being purged before the links are stored,
        or stored unseen both by this search and by their own video's linking.
        """
        vectors = self.embedder.embed([crop.image for crop in crops])
        with self._vectors.writing(session) as index, self.sightings.linking(session):
            if person.id is None:  # a new person: did a request with the same key enroll them meanwhile?
                with session.no_autoflush:
                    _raise_if_enrolled(session, person.enroll_key)
            else:  # an existing person: deleted or given these images meanwhile?
                known = set(session.scalars(sa.select(Image.sha256).where(Image.person_id == person.id)))
                if not session.scalar(sa.select(Person.id).where(Person.id == person.id)):
                    raise NotFound(f"no person has id {person.id}")
                for item in (crop.checked for crop in crops):
                    if item.sha256 in known:
                        raise Conflict(f"{safe_filename(item.upload.filename) or 'an image'} "
                                       f"is already enrolled for person {person.id}")
            with self.store.staged(session.rollback) as put:
                links = self.sightings.find_links(session, vectors, self.link_threshold)
                images = []
                for crop, vector in zip(crops, vectors):
                    item, box = crop.checked, crop.box
                    original = (put(item.upload.data, item.sha256, item.extension)
                                if keep_original and box is not None else None)
                    image = Image(person=person, source=source, original_name=safe_filename(item.upload.filename),
                                  sha256=item.sha256, width=crop.image.shape[1], height=crop.image.shape[0],
                                  byte_size=len(crop.data), stored_path=put(crop.data, crop.sha256, crop.extension),
                                  **_box_columns(box), detection_score=crop.score,
                                  upload_width=item.width, upload_height=item.height, original_path=original)
                    image.embeddings.append(Embedding(model_id=self.embedder.model_id, dim=self.embedder.dim,
                                                      vector=pack_vector(vector)))
                    session.add(image)
                    images.append(image)
                session.flush()
                self.sightings.store_links(session, [(person.id, sid, score) for sid, score in links.items()])
                audit.record(session, actor, action, target=f"person:{person.id}", source=source,
                             image_ids=[image.id for image in images],
                             boxes=[image.box for image in images], force=force,
                             originals_kept=sum(image.original_path is not None for image in images))
                self._vectors.commit(session)
            index.add(np.array([image.id for image in images], dtype=np.int64), vectors)
        return images

    def _count_vectors(self, session: Session, images: list[Image]) -> DeletionReceipt:
        ids = [image.id for image in images]
        vectors = session.scalar(sa.select(sa.func.count(Embedding.id)).where(Embedding.image_id.in_(ids)))
        return DeletionReceipt(images=ids, vectors=int(vectors or 0))

    def _forget(self, session: Session, images: list[Image], receipt: DeletionReceipt) -> DeletionReceipt:
        """After the rows are gone: drop the vectors from the index and unreferenced files."""
        self.index(session).remove(np.array(receipt.images, dtype=np.int64))
        paths = {path for image in images for path in (image.stored_path, image.original_path) if path}
        still_used = self._referenced_files(session, paths)
        for path in sorted(paths - still_used):
            if self.store.remove(path):
                receipt.files += 1
        return receipt

    @staticmethod
    def _referenced_files(session: Session, among: set[str] | None = None) -> set[str]:
        """Return the stored files (crops and kept originals) some image row refers to, of ``among``."""
        referenced: set[str] = set()
        for column in (Image.stored_path, Image.original_path):
            query = sa.select(column).where(column.is_not(None))
            if among is not None:
                query = query.where(column.in_(among))
            referenced.update(path for path in session.scalars(query) if path)
        return referenced

    def link_video(self, session: Session, video_id: int) -> int:
        """Link the enrolled persons to a newly indexed video's sightings, commit; return the new links.

        The persons are searched and linked under the gallery's lock and the footage lock, as
        an enroll links: a person enrolled or deleted meanwhile is seen whole or not at all.
        """
        sighting_ids, vectors = self.sightings.vectors_of(session, video_id)
        if not sighting_ids:
            return 0
        with self._vectors.writing(session) as index, self.sightings.linking(session):
            if len(index) == 0:
                return 0
            best: dict[tuple[int, int], float] = {}
            for sighting_id, person_hits in zip(sighting_ids, self._person_hits(session, vectors, top_k=5)):
                for person_id, _name, score, _image in person_hits:
                    if score >= self.link_threshold and score > best.get((person_id, sighting_id), -2.0):
                        best[(person_id, sighting_id)] = score
            new = self.sightings.store_links(session, [(p, s, score) for (p, s), score in best.items()])
            session.commit()
        return new

    # -- searching ---------------------------------------------------------------------------

    def find_persons(self, image: BGRImage) -> StillQueries:
        """Detect the persons in a still and embed each; with nobody detected the whole still is one query."""
        boxes: list[Detection | None] = list(self.detector.detect(image, self.detector_min_score))
        detected = len(boxes)
        if not boxes:
            boxes = [None]
        return StillQueries(boxes, self.embedder.embed(_crops(image, boxes)), detected)

    def search(self, session: Session, image: BGRImage, *, top_k: int, threshold: float,
               actor: str = audit.SYSTEM, query_sha256: str | None = None) -> SearchResponse:
        """Find the persons in a still; rank the enrolled persons and find footage sightings of each.

        Each detected person is one query; with no detection the whole image is one query,
        and the response says so (``detected`` 0, the result's ``whole_image``).
        The search is audited: ``actor``, the settings, and the person and sighting ids
        returned; the still's ``query_sha256`` (of the uploaded file) is kept beside the entry,
        until a person one of whose images has that digest is erased.

        Raises:
            InvalidInput: ``top_k`` outside 1..100 or ``threshold`` outside -1..1.
        """
        check_search_settings(top_k, threshold)
        response = self._rank(session, self.find_persons(image), top_k=top_k, threshold=threshold,
                              detector_id=self.detector.model_id)
        _audit_search(session, actor, query_sha256, response)
        session.commit()
        return response

    def save_search(self, session: Session, still: CheckedImage, *, actor: str = audit.SYSTEM) -> int:
        """Find the persons in a still and store the search (``searches``), to be ranked by ``rerun_search``.

        Returns:
            The stored search's id.
        """
        return self.searches.save(session, still, self.find_persons(still.image), model_id=self.embedder.model_id,
                                  detector_id=self.detector.model_id, actor=actor).id

    def rerun_search(self, session: Session, search_id: int, *, top_k: int, threshold: float,
                     actor: str = audit.SYSTEM) -> SearchResponse:
        """Rank the gallery and the footage for a stored search's queries, audited as a search.

        A search stored with another embedder model has its persons embedded again from its still.

        Raises:
            NotFound: no such search, or it expired. InvalidInput: as for ``search``.
        """
        check_search_settings(top_k, threshold)
        row = self.searches.get(session, search_id)
        queries = self.searches.queries(row)
        if row.model_id != self.embedder.model_id:
            still = decode_image(self.searches.store.read(row.stored_path))
            queries = replace(queries, vectors=self.embedder.embed(_crops(still, queries.boxes)))
        response = replace(self._rank(session, queries, top_k=top_k, threshold=threshold,
                                      detector_id=row.detector_id), search_id=row.id)
        _audit_search(session, actor, row.sha256, response)
        session.commit()
        return response

    def _rank(self, session: Session, queries: StillQueries, *, top_k: int, threshold: float,
              detector_id: str) -> SearchResponse:
        """Rank the enrolled persons and the footage sightings for each query.

        A query's sightings are those of its best person, if a match, as that person's reviews
        leave them: rejected ones left out, confirmed ones first.
        """
        hits = self._person_hits(session, queries.vectors, top_k)
        footage = self.sightings.search(session, queries.vectors, threshold, self.sightings_per_query)
        results = []
        for box, person_hits, sightings in zip(queries.boxes, hits, footage):
            matches, margin = decide(person_hits, threshold, top_k)
            if matches and matches[0].match:
                sightings = apply_reviews(sightings, self.sightings.reviews(session, matches[0].person_id))
            results.append(QueryResult(
                bbox=None if box is None else box.as_list(),
                detection_score=None if box is None else round(box.score, 4),
                matches=matches, margin=margin, sightings=sightings))
        return SearchResponse(threshold=threshold, top_k=top_k, model_id=self.embedder.model_id,
                              detector_id=detector_id, detected=queries.detected, results=results)

    def _person_hits(self, session: Session, vectors: np.ndarray, top_k: int
                     ) -> list[list[tuple[int, str, float, int]]]:
        """Search image vectors, widening k until each query has ``top_k`` persons or all images."""
        index = self.index(session)
        k = max(4 * top_k, 32)
        while True:
            scores, ids = index.search(vectors, k)
            found = {int(i) for i in ids.ravel() if i >= 0}
            owners = {row.id: (row.person_id, row.name) for row in session.execute(
                sa.select(Image.id, Image.person_id, Person.name).join(Person)
                .where(Image.id.in_(found)))}
            hits = [best_per_person(s, i, owners) for s, i in zip(scores, ids)]
            if k >= len(index) or all(len(h) >= top_k for h in hits):
                return hits
            k *= 4


def _raise_if_enrolled(session: Session, key: str | None) -> None:
    """Raise AlreadyEnrolled if a person was enrolled with idempotency key ``key``."""
    if key is not None:
        person_id = session.scalar(sa.select(Person.id).where(Person.enroll_key == key))
        if person_id is not None:
            raise AlreadyEnrolled(person_id)


def check_search_settings(top_k: int, threshold: float) -> None:
    """Raise InvalidInput unless ``top_k`` is within 1..100 and ``threshold`` within -1..1."""
    if not 1 <= top_k <= MAX_TOP_K:
        raise InvalidInput(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}")
    if not -1.0 <= threshold <= 1.0:
        raise InvalidInput(f"threshold must be a cosine similarity between -1 and 1, got {threshold}")


def _audit_search(session: Session, actor: str, query_sha256: str | None, response: SearchResponse) -> None:
    """Record a search: its settings and the person and sighting ids it returned (not committed)."""
    results = response.results
    audit.record_search(session, actor, query_sha256, threshold=response.threshold,
                        top_k=response.top_k, queries=len(results), detected=response.detected,
                        person_ids=sorted({m.person_id for r in results for m in r.matches}),
                        sighting_ids=sorted({h.sighting_id for r in results for h in r.sightings}),
                        **({} if response.search_id is None else {"search_id": response.search_id}))


def _crops(image: BGRImage, boxes: list[Detection | None]) -> list[BGRImage]:
    """Cut each box out of ``image`` (None: the whole image)."""
    return [image if b is None else image[b.y:b.y + b.h, b.x:b.x + b.w] for b in boxes]


def _box_columns(box: tuple[int, int, int, int] | None) -> dict[str, int | None]:
    """Return an image row's ``box_*`` values for a box taken from its upload (None: the whole upload)."""
    x, y, w, h = box if box is not None else (None, None, None, None)
    return {"box_x": x, "box_y": y, "box_w": w, "box_h": h}


def _digests(images: list[Image]) -> set[str]:
    """Return the SHA-256s of images' uploads and of their stored files (crops, kept originals: named by content)."""
    stored = (path for image in images for path in (image.stored_path, image.original_path) if path)
    return {image.sha256 for image in images} | {Path(path).stem for path in stored}
