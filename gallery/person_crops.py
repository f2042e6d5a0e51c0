"""The enrollment quality gate: each enrolled upload must hold exactly one person, whose box is kept.

A gallery image is compared with the persons found in CCTV stills, so it must show one whole
person and little else. Each upload goes through the detector: exactly one person, and that
person's box is what is embedded and stored; no person, or several, and the upload is refused
with a message naming the file and what was found. ``force`` enrolls uploads whole, for crops
too tight for the detector to find the person in them; with no detector (``none``) every
upload is enrolled whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from base.images import BGRImage, encode_png
from detector.base import Detection, Detector
from detector.whole_image import WholeImageDetector
from gallery.errors import InvalidInput
from gallery.uploads import CheckedImage, safe_filename

FORCE_HINT = ("if an image already is a crop of one person that the detector misses, enroll it "
              "with force (force=true in the API, --force on the command line, the form's "
              "checkbox \"already a crop of one person\")")


class NotOnePerson(InvalidInput):
    """Uploads that are not a crop of one person: none or several persons were found in them.

    Attributes:
        found: the file name (as sent) and the number of persons found, per refused upload.
    """

    def __init__(self, message: str, found: list[tuple[str, int]]) -> None:
        super().__init__(message)
        self.found = found


@dataclass(frozen=True)
class PersonCrop:
    """What is enrolled from one upload: the person's box, or the whole upload.

    Attributes:
        checked: the decoded upload.
        image: the pixels embedded and stored: the box's, or the whole upload's.
        data: the file stored: the crop as PNG, or the upload's own bytes.
        sha256: of ``data``; names the stored file.
        extension: of the stored file.
        box: ``(x, y, w, h)`` in the upload's pixels (None: the whole upload).
        score: the detector's score for the box (None: the whole upload).
    """

    checked: CheckedImage
    image: BGRImage
    data: bytes
    sha256: str
    extension: str
    box: tuple[int, int, int, int] | None
    score: float | None


def whole(checked: CheckedImage) -> PersonCrop:
    """Return the crop that is the whole upload."""
    return PersonCrop(checked, checked.image, checked.upload.data, checked.sha256,
                      checked.extension, None, None)


def box_crop(checked: CheckedImage, box: Detection) -> PersonCrop:
    """Return the crop of ``box`` from an upload, encoded as PNG (lossless: embedded as stored)."""
    pixels = checked.image[box.y:box.y + box.h, box.x:box.x + box.w].copy()
    data = encode_png(pixels)
    return PersonCrop(checked, pixels, data, hashlib.sha256(data).hexdigest(), ".png",
                      (box.x, box.y, box.w, box.h), round(box.score, 4))


def take_person_crops(checked: Sequence[CheckedImage], detector: Detector, *, min_score: float | None,
                      min_width: int, min_height: int, force: bool = False) -> list[PersonCrop]:
    """Return each upload's one person, or refuse them all if any holds none or several.

    Args:
        checked: decoded uploads.
        detector: the person detector (``WholeImageDetector``: every upload is taken whole).
        min_score: the detector score a person needs, in [0, 1] (None: the detector's own).
        min_width, min_height: the smallest box that may be enrolled, in pixels.
        force: take every upload whole, without looking for persons.

    Returns:
        One crop per upload, in order.

    Raises:
        NotOnePerson: an upload with no person or several; the message names every such file
            and says what was found in it.
        InvalidInput: the one person in an upload is smaller than ``min_width`` x ``min_height``.
    """
    if force or isinstance(detector, WholeImageDetector):
        return [whole(item) for item in checked]
    found = detector.detect_batch([item.image for item in checked], min_score)
    crops, refused, problems = [], [], []
    for item, boxes in zip(checked, found):
        label = safe_filename(item.upload.filename) or "an image"
        if len(boxes) == 1:
            (box,) = boxes
            if box.w < min_width or box.h < min_height:
                problems.append(f"{label}: the one person found is {box.w}x{box.h} pixels, smaller "
                                f"than the {min_width}x{min_height} an enrolled image needs")
            crops.append(box_crop(item, box))
            continue
        refused.append((label, len(boxes)))
        if boxes:
            scores = ", ".join(f"{d.score:.2f}" for d in boxes)
            problems.append(f"{label}: {len(boxes)} persons found (detector scores {scores})")
        else:
            problems.append(f"{label}: no person found")
    if refused:
        raise NotOnePerson(
            f"{len(refused)} of {len(checked)} image(s) are not a crop of one person "
            f"(detector {detector.model_id}): {'; '.join(problems)}. Enroll one person per image, "
            f"cropped to that person; {FORCE_HINT}", refused)
    if problems:
        raise InvalidInput("; ".join(problems))
    return crops
