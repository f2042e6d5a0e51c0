"""The search requests shared by the pages and the API: read the still and the settings, store, rank."""

from __future__ import annotations

from gallery.service import SearchResponse, check_search_settings
from gallery.uploads import check_image
from web import params
from web.auth import actor
from web.state import db_session, reid


def search_settings() -> tuple[int, float]:
    """Return the request's ``top_k`` and ``threshold``, else the configured ones.

    Raises:
        InvalidInput: not numbers, or out of range.
    """
    top_k, threshold = params.top_k(), params.threshold(reid().default_threshold())
    check_search_settings(top_k, threshold)
    return top_k, threshold


def save_search() -> int:
    """Find the persons in the still uploaded as ``image`` and store the search; return its id.

    Raises:
        InvalidInput: missing or unusable image.
        Busy: other requests' images took the worker's decoding budget for too long.
    """
    state = reid()
    upload = params.one_upload("image")
    with state.gallery.decodes.hold([upload]):
        checked = check_image(upload, **state.settings.image_limits())
        return state.gallery.save_search(db_session(), checked, actor=actor())


def rank_search(search_id: int, top_k: int, threshold: float) -> SearchResponse:
    """Rank the gallery and the footage for a stored search.

    Raises:
        NotFound: no such search, or it expired.
    """
    return reid().gallery.rerun_search(db_session(), search_id, top_k=top_k, threshold=threshold, actor=actor())
