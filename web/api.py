"""The JSON API: persons, images, stored searches, sighting reviews, health."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from gallery.errors import AlreadyEnrolled
from gallery.models import Image, Person
from gallery.service import SearchResponse
from web import params
from web.auth import actor, public, requires
from web.enrolling import enroll_posted
from web.searching import rank_search, save_search, search_settings
from web.state import db_session, reid

bp = Blueprint("api", __name__, url_prefix="/api")


def image_dict(image: Image) -> dict:
    """Serialize an image row with links to its file and thumbnail."""
    return {"id": image.id, "person_id": image.person_id, "original_name": image.original_name,
            "width": image.width, "height": image.height, "sha256": image.sha256,
            "box": image.box, "detection_score": image.detection_score,
            "upload_width": image.upload_width, "upload_height": image.upload_height,
            "source": image.source, "created_at": image.created_at.isoformat(),
            "url": url_for("pages.image_file", image_id=image.id),
            "thumbnail": url_for("pages.image_thumbnail", image_id=image.id),
            "original_url": (url_for("pages.image_original", image_id=image.id)
                             if image.original_path else None)}


def person_dict(person: Person, image_count: int | None = None) -> dict:
    """Serialize a person; with ``image_count`` a summary, else with every image."""
    data = {"id": person.id, "name": person.name, "notes": person.notes,
            "created_at": person.created_at.isoformat()}
    if image_count is None:
        data["images"] = [image_dict(image) for image in person.images]
    else:
        data["image_count"] = image_count
    return data


@bp.post("/persons")
@requires("operator")
def create_person() -> ResponseReturnValue:
    """Enroll a person; a request repeating an ``Idempotency-Key`` gets the first one's person (200, not 201)."""
    gallery = reid().gallery
    status = 201
    try:
        person = enroll_posted()
    except AlreadyEnrolled as repeated:
        person, status = gallery.get_person(db_session(), repeated.person_id), 200
    return jsonify(person=person_dict(person), image_ids=[i.id for i in person.images],
                   same_name=gallery.same_name(db_session(), person.name, other_than=person.id)), status


@bp.get("/persons")
@requires("viewer")
def list_persons() -> ResponseReturnValue:
    rows = reid().gallery.list_persons(db_session(), request.args.get("q", "").strip() or None)
    return jsonify(persons=[person_dict(person, n) for person, n, _ in rows])


@bp.get("/persons/<int:person_id>")
@requires("viewer")
def get_person(person_id: int) -> ResponseReturnValue:
    state = reid()
    person = person_dict(state.gallery.get_person(db_session(), person_id))
    person["sightings"] = [
        {"sighting_id": item.sighting.id, "camera": item.video.camera, "video": item.video.path,
         "start": item.sighting.start_time.isoformat(), "end": item.sighting.end_time.isoformat(),
         "score": None if item.score is None else round(item.score, 6), "confirmed": item.confirmed,
         "frame_url": url_for("pages.sighting_frame", sighting_id=item.sighting.id)}
        for item in state.gallery.sightings.for_person(
            db_session(), person_id, state.default_threshold(), request.args.get("order", "time"))]
    return jsonify(person=person)


@bp.post("/persons/<int:person_id>/sightings/<int:sighting_id>/review")
@requires("operator")
def review_sighting(person_id: int, sighting_id: int) -> ResponseReturnValue:
    """Confirm (``verdict=confirm``) or reject (``verdict=reject``) a sighting as the person."""
    confirmed = params.verdict()
    reid().gallery.sightings.review(db_session(), person_id, sighting_id, confirmed, actor=actor())
    return jsonify(person_id=person_id, sighting_id=sighting_id, confirmed=confirmed)


@bp.post("/persons/<int:person_id>/images")
@requires("operator")
def add_images(person_id: int) -> ResponseReturnValue:
    images = reid().gallery.add_images(db_session(), person_id, params.uploads("images"), actor=actor(),
                                       force=params.flag("force"), keep_original=params.flag("keep_original"))
    return jsonify(person_id=person_id, image_ids=[i.id for i in images],
                   images=[image_dict(image) for image in images]), 201


@bp.delete("/persons/<int:person_id>")
@requires("admin")
def delete_person(person_id: int) -> ResponseReturnValue:
    return jsonify(deleted=reid().gallery.delete_person(db_session(), person_id, actor=actor()).to_dict())


@bp.delete("/images/<int:image_id>")
@requires("admin")
def delete_image(image_id: int) -> ResponseReturnValue:
    return jsonify(deleted=reid().gallery.delete_image(db_session(), image_id, actor=actor()).to_dict())


@bp.post("/search")
@requires("viewer")
def search() -> ResponseReturnValue:
    """Store a search by still and answer its results; ``url`` ranks it again (``GET``) until it expires."""
    top_k, threshold = search_settings()
    return _search_json(rank_search(save_search(), top_k, threshold))


@bp.get("/searches/<int:search_id>")
@requires("viewer")
def get_search(search_id: int) -> ResponseReturnValue:
    """Rank a stored search again, with this request's ``top_k`` and ``threshold``."""
    top_k, threshold = search_settings()
    return _search_json(rank_search(search_id, top_k, threshold))


def _search_json(response: SearchResponse) -> ResponseReturnValue:
    data = response.to_dict()
    data["url"] = url_for("api.get_search", search_id=response.search_id)
    data["page_url"] = url_for("pages.saved_search", search_id=response.search_id)
    for result in data["results"]:
        for match in result["matches"]:
            match["thumbnail"] = url_for("pages.image_thumbnail", image_id=match["image_id"])
        for sighting in result["sightings"]:
            sighting["thumbnail"] = url_for("pages.sighting_crop", crop_id=sighting["crop_id"])
            sighting["frame_url"] = url_for("pages.sighting_frame", sighting_id=sighting["sighting_id"])
    return jsonify(data)


@bp.get("/health")
@public  # counts and the model's id only: load balancers and monitors need no key
def health() -> ResponseReturnValue:
    state = reid()
    session = db_session()
    gallery = state.gallery
    return jsonify(status="ok", model_id=gallery.embedder.model_id,
                   threshold=state.default_threshold(),
                   persons=session.scalar(sa.select(sa.func.count(Person.id))),
                   images=session.scalar(sa.select(sa.func.count(Image.id))),
                   vectors_indexed=len(gallery.index(session)))
