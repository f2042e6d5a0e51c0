"""The search request shared by the page and the API: read the still, the parameters, search."""

from __future__ import annotations

from base.images import BGRImage
from gallery.service import SearchResponse
from gallery.uploads import check_image
from web import params
from web.auth import actor
from web.state import db_session, reid


def search_request() -> tuple[BGRImage, SearchResponse]:
    """Search by the still uploaded as ``image`` with the request's ``top_k`` and ``threshold``.

    Raises:
        InvalidInput: missing or unusable image, bad parameter.
        Busy: other requests' images took the worker's decoding budget for too long.
    """
    state = reid()
    top_k = params.top_k()
    threshold = params.threshold(state.default_threshold())
    upload = params.one_upload("image")
    with state.gallery.decodes.hold([upload]):
        checked = check_image(upload, **state.settings.image_limits())
        return checked.image, state.gallery.search(db_session(), checked.image, top_k=top_k,
                                                   threshold=threshold, actor=actor(),
                                                   query_sha256=checked.sha256)
