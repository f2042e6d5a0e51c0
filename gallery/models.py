"""The gallery's tables: persons, their images and vectors; indexed videos and their sightings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value} given; use a timezone-aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Primary keys are SQL INTEGER: 32-bit on PostgreSQL. A larger id cannot be stored, so a lookup
# of one is answered "not found" before the database refuses the literal. Ids are never reused,
# so a retried delete or a stale FAISS id cannot reach a newer row: PostgreSQL's sequences never go
# back, and every table keyed by a surrogate id is ``sqlite_autoincrement`` (else SQLite hands out
# max(id) + 1, the id of a just-deleted newest row).
MAX_ID = 2**31 - 1


def pack_vector(vector: NDArray[np.float32]) -> bytes:
    """Serialize a 1-D float32 vector (little-endian) for a vector column."""
    return np.asarray(vector, dtype="<f4").tobytes()


def unpack_vectors(blobs: Sequence[bytes], dim: int) -> NDArray[np.float32]:
    """Return vector-column values as an (N, dim) float32 array (N may be 0)."""
    if not blobs:
        return np.zeros((0, dim), np.float32)
    return np.stack([np.frombuffer(blob, dtype="<f4") for blob in blobs]).astype(np.float32)


class Base(DeclarativeBase):
    """Declarative base whose metadata names constraints predictably (for Alembic)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime}


class Person(Base):
    """A known person, enrolled with one or more images."""

    __tablename__ = "persons"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The idempotency key the enrolling request carried: a repeated request finds this person.
    enroll_key: Mapped[str | None] = mapped_column(sa.String(64), default=None, index=True, unique=True)

    images: Mapped[list[Image]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Image.id")


class Image(Base):
    """One enrolled image of a person, stored as a file under the data directory.

    The stored file is the person's crop: the box the detector found in the upload
    (``box_*``, ``detection_score``), or the whole upload when no box was taken (the
    operator said it was already a crop, or no detector is configured). ``sha256`` is the
    upload's, so the same upload is never enrolled twice for a person; ``width`` and
    ``height`` are the stored crop's, ``upload_width`` and ``upload_height`` the upload's.
    ``original_path`` is the upload itself, kept for audit only when the operator asked.
    """

    __tablename__ = "images"
    __table_args__ = (sa.UniqueConstraint("person_id", "sha256"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(sa.String(20))
    original_name: Mapped[str] = mapped_column(sa.String(255), default="")
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    width: Mapped[int]
    height: Mapped[int]
    byte_size: Mapped[int]
    stored_path: Mapped[str] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    box_x: Mapped[int | None]
    box_y: Mapped[int | None]
    box_w: Mapped[int | None]
    box_h: Mapped[int | None]
    detection_score: Mapped[float | None]
    upload_width: Mapped[int | None]
    upload_height: Mapped[int | None]
    original_path: Mapped[str | None] = mapped_column(sa.String(300))

    person: Mapped[Person] = relationship(back_populates="images")
    embeddings: Mapped[list[Embedding]] = relationship(
        back_populates="image", cascade="all, delete-orphan", passive_deletes=True)

    @property
    def box(self) -> list[int] | None:
        """Return the ``[x, y, w, h]`` box taken from the upload (None: the whole upload)."""
        if self.box_x is None or self.box_y is None or self.box_w is None or self.box_h is None:
            return None
        return [self.box_x, self.box_y, self.box_w, self.box_h]


class Embedding(Base):
    """The vector one embedder model produced for one image."""

    __tablename__ = "embeddings"
    __table_args__ = (sa.UniqueConstraint("image_id", "model_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(sa.ForeignKey("images.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(sa.String(100), index=True)
    dim: Mapped[int]
    vector: Mapped[bytes] = mapped_column(sa.LargeBinary)

    image: Mapped[Image] = relationship(back_populates="embeddings")


class Video(Base):
    """A recording that was indexed completely (a row exists only once all its sightings do)."""

    __tablename__ = "videos"
    __table_args__ = (sa.UniqueConstraint("sha256", "model_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(sa.String(1000))
    camera: Mapped[str] = mapped_column(sa.String(200), index=True)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    model_id: Mapped[str] = mapped_column(sa.String(100))
    settings: Mapped[str] = mapped_column(sa.String(64))
    recorded_start: Mapped[datetime] = mapped_column(index=True)
    fps: Mapped[float]
    frame_count: Mapped[int]
    frames_analysed: Mapped[int]
    duration_s: Mapped[float]
    processing_s: Mapped[float]
    indexed_at: Mapped[datetime] = mapped_column(default=utcnow)

    sightings: Mapped[list[Sighting]] = relationship(
        back_populates="video", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Sighting.start_time")


class Sighting(Base):
    """One track in a video: where and when one (unknown) person was seen."""

    __tablename__ = "sightings"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[int] = mapped_column(sa.ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    start_time: Mapped[datetime] = mapped_column(index=True)
    end_time: Mapped[datetime] = mapped_column()
    start_frame: Mapped[int]
    end_frame: Mapped[int]
    detections: Mapped[int]
    mean_vector: Mapped[bytes] = mapped_column(sa.LargeBinary)

    video: Mapped[Video] = relationship(back_populates="sightings")
    crops: Mapped[list[SightingCrop]] = relationship(
        back_populates="sighting", cascade="all, delete-orphan", passive_deletes=True,
        order_by="SightingCrop.rank")
    vectors: Mapped[list[SightingVector]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True)


class SightingCrop(Base):
    """One of a sighting's best crops (rank 0 is the thumbnail), with its quality measures."""

    __tablename__ = "sighting_crops"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    sighting_id: Mapped[int] = mapped_column(sa.ForeignKey("sightings.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int]
    frame: Mapped[int]
    x: Mapped[int]
    y: Mapped[int]
    w: Mapped[int]
    h: Mapped[int]
    detection_score: Mapped[float]
    sharpness: Mapped[float]
    quality: Mapped[float]
    stored_path: Mapped[str] = mapped_column(sa.String(300))

    sighting: Mapped[Sighting] = relationship(back_populates="crops")

    def bbox(self) -> list[int]:
        """Return the box as ``[x, y, w, h]``."""
        return [self.x, self.y, self.w, self.h]


class SightingVector(Base):
    """One member embedding of a sighting; the sightings FAISS index is keyed by these ids."""

    __tablename__ = "sighting_vectors"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    sighting_id: Mapped[int] = mapped_column(sa.ForeignKey("sightings.id", ondelete="CASCADE"), index=True)
    frame: Mapped[int]
    quality: Mapped[float]
    vector: Mapped[bytes] = mapped_column(sa.LargeBinary)


class SightingMatch(Base):
    """A link between an enrolled person and a sighting that scored above the threshold."""

    __tablename__ = "sighting_matches"

    person_id: Mapped[int] = mapped_column(sa.ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True)
    sighting_id: Mapped[int] = mapped_column(
        sa.ForeignKey("sightings.id", ondelete="CASCADE"), primary_key=True, index=True)
    score: Mapped[float]
    matched_at: Mapped[datetime] = mapped_column(default=utcnow)

    sighting: Mapped[Sighting] = relationship()


class SightingReview(Base):
    """An operator's verdict on a sighting for one person: confirmed (it is them) or rejected (it is not)."""

    __tablename__ = "sighting_reviews"

    person_id: Mapped[int] = mapped_column(sa.ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True)
    sighting_id: Mapped[int] = mapped_column(
        sa.ForeignKey("sightings.id", ondelete="CASCADE"), primary_key=True, index=True)
    confirmed: Mapped[bool]
    reviewed_at: Mapped[datetime] = mapped_column(default=utcnow)


class SavedSearch(Base):
    """A search by still, kept so its results can be reopened and ranked again without the upload.

    ``boxes`` is a JSON list of ``[x, y, w, h, detector score]``, one per person found (``[null]``:
    nobody was detected, ``detected`` is 0, and the whole still is the one query); ``vectors`` holds one vector of
    ``model_id`` per query. ``sha256`` is the upload's, so erasing a person whose image it is
    erases the search too. Kept until the retention period has passed (``purge``).
    """

    __tablename__ = "saved_searches"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    stored_path: Mapped[str] = mapped_column(sa.String(300))
    width: Mapped[int]
    height: Mapped[int]
    detector_id: Mapped[str] = mapped_column(sa.String(100))
    model_id: Mapped[str] = mapped_column(sa.String(100))
    dim: Mapped[int]
    detected: Mapped[int]
    boxes: Mapped[str] = mapped_column(sa.Text)
    vectors: Mapped[bytes] = mapped_column(sa.LargeBinary)


ROLES = ("viewer", "operator", "admin")


class ApiKey(Base):
    """A client's key: only its prefix (to find it) and SHA-256 (to check it) are stored."""

    __tablename__ = "api_keys"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class User(Base):
    """A person who signs in to the pages; the password is stored as a salted slow hash."""

    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(300))
    role: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled: Mapped[bool] = mapped_column(default=False)
    # Raised at sign-out, disabling and password change: sign-in cookies of an older one are refused.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")


class AuditEntry(Base):
    """One accountable action; the table is append-only (database triggers refuse changes)."""

    __tablename__ = "audit_log"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(sa.String(200))
    action: Mapped[str] = mapped_column(sa.String(40), index=True)
    target: Mapped[str | None] = mapped_column(sa.String(100), default=None)
    details: Mapped[str] = mapped_column(sa.Text, default="{}")

    query: Mapped[SearchQuery | None] = relationship(lazy="selectin", viewonly=True)


class SearchQuery(Base):
    """The SHA-256 of a searched still, beside its (append-only) audit entry.

    Kept apart so that erasing a person can erase it too when it is the digest of one of
    their images: the audit log itself holds ids and counts only.
    """

    __tablename__ = "search_queries"

    audit_id: Mapped[int] = mapped_column(sa.ForeignKey("audit_log.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)


class SignInFailure(Base):
    """A failed sign-in, kept for the rate limits' window: when, from where, on which name (hashed)."""

    __tablename__ = "sign_in_failures"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    remote_addr: Mapped[str] = mapped_column(sa.String(64), index=True)
    username_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)


class IndexState(Base):
    """A generation counter per FAISS index, raised in the transaction of every write to it.

    Each process compares it with the generation its in-memory index was synced at, so a
    write acknowledged by one worker is seen by every other.
    """

    __tablename__ = "index_state"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    generation: Mapped[int] = mapped_column(sa.BigInteger, default=0)
