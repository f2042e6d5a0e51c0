"""The HTML pages: search by still and its stored results, the persons list with enrollment,
one person's page, a sighting's frame."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from base.images import decode_image, encode_jpeg
from detector.base import Detection
from detector.drawing import draw_detections
from gallery.errors import AlreadyEnrolled, NotFound
from gallery.models import Image
from web import params
from web.auth import actor, is_local_path, requires
from web.enrolling import enroll_posted
from web.searching import rank_search, save_search, search_settings
from web.state import db_session, reid
from web.timeline import layout

bp = Blueprint("pages", __name__)

# Person images and crops are never kept by browsers: once erased, they are gone from view too.
PERSONAL_IMAGE_HEADERS = {"Cache-Control": "no-store"}


@bp.get("/")
@requires("viewer")
def index() -> ResponseReturnValue:
    return render_template("search.html", threshold=reid().default_threshold(),
                           top_k=reid().settings.top_k, response=None)


@bp.get("/search")
@requires("viewer")
def search_form() -> ResponseReturnValue:
    """The address a search was posted to, opened again: the search form (results live at /searches/<id>)."""
    return redirect(url_for("pages.index"), 303)


@bp.post("/search")
@requires("viewer")
def search() -> ResponseReturnValue:
    """Store the search, then show it at its own address (which can be reopened and re-ranked)."""
    top_k, threshold = search_settings()
    search_id = save_search()
    return redirect(url_for("pages.saved_search", search_id=search_id, top_k=top_k, threshold=threshold), 303)


@bp.get("/searches/<int:search_id>")
@requires("viewer")
def saved_search(search_id: int) -> ResponseReturnValue:
    top_k, threshold = search_settings()
    response = rank_search(search_id, top_k, threshold)
    return render_template("search.html", threshold=threshold, top_k=top_k, response=response,
                           retention_days=f"{reid().gallery.searches.retention_days:g}",
                           still_url=url_for("pages.search_still", search_id=search_id),
                           timelines=[layout(r.sightings) for r in response.results])


@bp.get("/searches/<int:search_id>/still")
@requires("viewer")
def search_still(search_id: int) -> ResponseReturnValue:
    """The searched still with the persons found in it boxed and numbered."""
    searches = reid().gallery.searches
    row = searches.get(db_session(), search_id)
    boxes = [box for box in searches.queries(row).boxes if box is not None]
    still = decode_image(searches.store.read(row.stored_path))
    return Response(encode_jpeg(draw_detections(still, boxes)), mimetype="image/jpeg",
                    headers=PERSONAL_IMAGE_HEADERS)


@bp.get("/persons")
@requires("viewer")
def persons() -> ResponseReturnValue:
    name = request.args.get("q", "").strip()
    return render_template("persons.html", rows=reid().gallery.list_persons(db_session(), name or None),
                           query=name, enroll_key=uuid.uuid4().hex)


@bp.post("/persons")
@requires("operator")
def enroll() -> ResponseReturnValue:
    gallery = reid().gallery
    try:
        person = enroll_posted()
    except AlreadyEnrolled as repeated:
        flash(f"This form was sent before: it enrolled person {repeated.person_id} then, and nothing "
              "was added now.")
        return redirect(url_for("pages.person", person_id=repeated.person_id), 303)
    flash(f"Enrolled {person.name} with {len(person.images)} image(s) as person {person.id}: "
          f"{_taken(person.images)}.")
    others = gallery.same_name(db_session(), person.name, other_than=person.id)
    if others:
        flash(f"Another person is already named {person.name}: person "
              f"{', '.join(str(i) for i in others)}. If this is the same person, add the images to "
              f"that person and delete person {person.id}.")
    return redirect(url_for("pages.person", person_id=person.id), 303)


@bp.get("/persons/<int:person_id>")
@requires("viewer")
def person(person_id: int) -> ResponseReturnValue:
    state = reid()
    order = request.args.get("order", "time")
    return render_template(
        "person.html", person=state.gallery.get_person(db_session(), person_id), order=order,
        sightings=state.gallery.sightings.for_person(db_session(), person_id, state.default_threshold(), order))


@bp.post("/persons/<int:person_id>/sightings/<int:sighting_id>/review")
@requires("operator")
def review_sighting(person_id: int, sighting_id: int) -> ResponseReturnValue:
    """Confirm a sighting as the person, or reject it ("not this person"); back to the page it came from."""
    confirmed = params.verdict()
    reid().gallery.sightings.review(db_session(), person_id, sighting_id, confirmed, actor=actor())
    flash(f"Sighting {sighting_id} {'confirmed as' if confirmed else 'rejected: not'} person {person_id}.")
    back = request.form.get("next", "")
    return redirect(back if is_local_path(back) else url_for("pages.person", person_id=person_id), 303)


@bp.post("/persons/<int:person_id>/images")
@requires("operator")
def add_images(person_id: int) -> ResponseReturnValue:
    images = reid().gallery.add_images(db_session(), person_id, params.uploads("images"), actor=actor(),
                                       force=params.flag("force"), keep_original=params.flag("keep_original"))
    flash(f"Added {len(images)} image(s): {_taken(images)}.")
    return redirect(url_for("pages.person", person_id=person_id), 303)


def _taken(images: list[Image]) -> str:
    """Say what was enrolled of each upload: the person's box, or the whole image."""
    return "; ".join(
        f"{image.original_name or f'image {image.id}'}: "
        + (f"the person in box {image.box} (detector score {image.detection_score:.2f})"
           if image.box is not None else "the whole image") for image in images)


@bp.post("/persons/<int:person_id>/delete")
@requires("admin")
def delete_person(person_id: int) -> ResponseReturnValue:
    receipt = reid().gallery.delete_person(db_session(), person_id, actor=actor())
    flash(f"Erased person {person_id}: {len(receipt.images)} image(s), {receipt.vectors} vector(s), "
          f"{receipt.files} file(s), {receipt.links} footage link(s).")
    return redirect(url_for("pages.persons"), 303)


@bp.post("/images/<int:image_id>/delete")
@requires("admin")
def delete_image(image_id: int) -> ResponseReturnValue:
    gallery = reid().gallery
    person_id = gallery.get_image(db_session(), image_id).person_id
    gallery.delete_image(db_session(), image_id, actor=actor())
    flash(f"Deleted image {image_id}.")
    return redirect(url_for("pages.person", person_id=person_id), 303)


@bp.get("/images/<int:image_id>")
@requires("viewer")
def image_file(image_id: int) -> ResponseReturnValue:
    gallery = reid().gallery
    image = gallery.get_image(db_session(), image_id)
    mimetype = {".jpg": "image/jpeg", ".png": "image/png", ".bmp": "image/bmp",
                ".webp": "image/webp"}.get(Path(image.stored_path).suffix, "application/octet-stream")
    return Response(gallery.store.read(image.stored_path), mimetype=mimetype,
                    headers=PERSONAL_IMAGE_HEADERS)


@bp.get("/images/<int:image_id>/original")
@requires("operator")
def image_original(image_id: int) -> ResponseReturnValue:
    """The upload an image was cropped from, kept for audit, with the box that was taken."""
    gallery = reid().gallery
    image = gallery.get_image(db_session(), image_id)
    if image.original_path is None or image.box is None:
        raise NotFound(f"image {image_id} has no kept original")
    x, y, w, h = image.box
    upload = decode_image(gallery.store.read(image.original_path))
    drawn = draw_detections(upload, [Detection(x, y, w, h, image.detection_score or 0.0)],
                            labels=[f"image {image_id}"])
    return Response(encode_jpeg(drawn), mimetype="image/jpeg",
                    headers=PERSONAL_IMAGE_HEADERS)


@bp.get("/images/<int:image_id>/thumb")
@requires("viewer")
def image_thumbnail(image_id: int) -> ResponseReturnValue:
    gallery = reid().gallery
    return Response(gallery.store.thumbnail(gallery.get_image(db_session(), image_id).stored_path),
                    mimetype="image/jpeg", headers=PERSONAL_IMAGE_HEADERS)


@bp.get("/sightings/crops/<int:crop_id>")
@requires("viewer")
def sighting_crop(crop_id: int) -> ResponseReturnValue:
    sightings = reid().gallery.sightings
    return Response(sightings.store.read(sightings.get_crop(db_session(), crop_id).stored_path),
                    mimetype="image/jpeg", headers=PERSONAL_IMAGE_HEADERS)


@bp.get("/sightings/<int:sighting_id>")
@requires("viewer")
def sighting(sighting_id: int) -> ResponseReturnValue:
    """A sighting's frame with its camera, time and box; with ``?person=``, as one of that person's sightings."""
    state = reid()
    found = state.gallery.sightings.get(db_session(), sighting_id)
    crop = found.crops[0]
    seen_at = found.video.recorded_start + timedelta(seconds=crop.frame / found.video.fps)
    person_id = request.args.get("person", type=int)
    person, linked, place = None, [], None
    if person_id is not None:
        person = state.gallery.get_person(db_session(), person_id)
        linked = state.gallery.sightings.for_person(db_session(), person_id, state.default_threshold())
        place = next((i for i, item in enumerate(linked) if item.sighting.id == sighting_id), None)
    return render_template("sighting.html", sighting=found, crop=crop, seen_at=seen_at, person=person,
                           linked=linked, place=place)


@bp.get("/sightings/<int:sighting_id>/clip")
@requires("viewer")
def sighting_clip(sighting_id: int) -> ResponseReturnValue:
    """A few seconds of the recording around the sighting's frame, cut on demand (WebM)."""
    return Response(reid().gallery.sightings.clip(db_session(), sighting_id), mimetype="video/webm",
                    headers=PERSONAL_IMAGE_HEADERS)


@bp.get("/sightings/<int:sighting_id>/frame")
@requires("viewer")
def sighting_frame(sighting_id: int) -> ResponseReturnValue:
    frame, box = reid().gallery.sightings.frame(db_session(), sighting_id)
    return Response(encode_jpeg(draw_detections(frame, [box], labels=[f"sighting {sighting_id}"])),
                    mimetype="image/jpeg", headers=PERSONAL_IMAGE_HEADERS)
