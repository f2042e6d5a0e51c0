"""The enrollment gate with a real detector on real images: one person, no person, several persons."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from skimage import data as skdata
from sqlalchemy.orm import Session

from base.images import BGRImage, decode_image
from detector.pedestrian_adas import DEFAULT_ADAS_PATH, PedestrianAdasDetector
from detector.ssdlite import SSDLitePersonDetector
from gallery.errors import InvalidInput
from gallery.models import Image, Person
from gallery.person_crops import NotOnePerson
from gallery.service import Gallery
from gallery.uploads import Upload
from tests.conftest import SHARED_DATA, ThumbnailEmbedder

CUHK03 = SHARED_DATA / "cuhk03" / "val" / "gallery"
PETS = SHARED_DATA / "footage" / "pets09-s2l1.avi"


def png(image: BGRImage) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def astronaut() -> BGRImage:
    """scikit-image's astronaut: one person, 512x512."""
    return np.ascontiguousarray(cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))


def blank() -> BGRImage:
    """A grey image with a darker band: nobody."""
    image = np.full((300, 200, 3), 150, np.uint8)
    image[120:180] = 60
    return image


@pytest.fixture(scope="module")
def ssdlite() -> SSDLitePersonDetector:
    detector = SSDLitePersonDetector()
    detector.load()
    return detector


@pytest.fixture(scope="module")
def adas() -> PedestrianAdasDetector:
    if not (DEFAULT_ADAS_PATH.is_dir() and CUHK03.is_dir() and PETS.is_file()):
        pytest.skip("needs ../shared/models (pedestrian-detection-adas-0002) and ../shared/data")
    detector = PedestrianAdasDetector()
    detector.load()
    return detector


def gallery_with(detector: SSDLitePersonDetector | PedestrianAdasDetector, data_dir: Path) -> Gallery:
    return Gallery(data_dir, ThumbnailEmbedder(), detector, link_threshold=0.9)


def stored_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "images").rglob("*") if p.is_file())


def test_one_person_enrolls_their_box(session: Session, data_dir: Path, ssdlite: SSDLitePersonDetector) -> None:
    gallery = gallery_with(ssdlite, data_dir)
    upload = astronaut()
    person = gallery.enroll(session, "Eileen", [Upload(png(upload), "eileen.png")])
    (image,) = person.images
    (found,) = ssdlite.detect(upload)
    assert image.box == found.as_list() and image.detection_score == pytest.approx(found.score, abs=1e-4)
    assert (image.upload_width, image.upload_height) == (512, 512)
    assert (image.width, image.height) == (found.w, found.h)
    stored = decode_image(gallery.store.read(image.stored_path))
    np.testing.assert_array_equal(stored, upload[found.y:found.y + found.h, found.x:found.x + found.w])
    assert image.original_path is None and len(stored_files(data_dir)) == 1


def test_no_person_and_several_persons_are_refused_naming_each_file(
        session: Session, data_dir: Path, ssdlite: SSDLitePersonDetector) -> None:
    gallery = gallery_with(ssdlite, data_dir)
    two = np.concatenate([astronaut(), astronaut()[:, ::-1]], axis=1)
    uploads = [Upload(png(astronaut()), "ok.png"), Upload(png(blank()), "wall.png"),
               Upload(png(two), "pair.png")]
    with pytest.raises(NotOnePerson) as refused:
        gallery.enroll(session, "Eileen", uploads)
    message = str(refused.value)
    assert "2 of 3 image(s) are not a crop of one person" in message
    assert "wall.png: no person found" in message
    assert "pair.png: 2 persons found (detector scores " in message
    assert "ok.png" not in message and "force=true" in message
    assert refused.value.found == [("wall.png", 0), ("pair.png", 2)]
    assert isinstance(refused.value, InvalidInput)  # a 400 at the API
    assert session.scalar(sa.select(sa.func.count()).select_from(Person)) == 0
    assert stored_files(data_dir) == []


def test_force_enrolls_the_whole_image(session: Session, data_dir: Path,
                                       ssdlite: SSDLitePersonDetector) -> None:
    gallery = gallery_with(ssdlite, data_dir)
    tight = astronaut()[40:300, 120:260].copy()  # a crop too tight to find her in
    person = gallery.enroll(session, "Eileen", [Upload(png(tight), "tight.png")], force=True)
    (image,) = person.images
    assert image.box is None and image.detection_score is None
    assert (image.width, image.height) == (140, 260) == (image.upload_width, image.upload_height)
    assert gallery.store.read(image.stored_path) == png(tight)


def test_kept_originals_are_stored_and_erased_with_the_person(
        session: Session, data_dir: Path, ssdlite: SSDLitePersonDetector) -> None:
    gallery = gallery_with(ssdlite, data_dir)
    person = gallery.enroll(session, "Eileen", [Upload(png(astronaut()), "eileen.png")], keep_original=True)
    (image,) = person.images
    assert image.original_path is not None and gallery.store.read(image.original_path) == png(astronaut())
    assert len(stored_files(data_dir)) == 2
    assert gallery.remove_orphan_files(session) == 0  # the original is referenced
    receipt = gallery.delete_person(session, person.id)
    assert receipt.files == 2 and stored_files(data_dir) == []


def test_the_one_person_must_be_large_enough(session: Session, data_dir: Path,
                                             ssdlite: SSDLitePersonDetector) -> None:
    gallery = Gallery(data_dir, ThumbnailEmbedder(), ssdlite, link_threshold=0.9, min_height=480)
    with pytest.raises(InvalidInput, match=r"one person found is \d+x\d+ pixels, smaller than the 24x480"):
        gallery.enroll(session, "Eileen", [Upload(png(astronaut()), "eileen.png")])


def test_pedestrian_adas_gate_on_cctv_crops_and_frames(session: Session, data_dir: Path,
                                                       adas: PedestrianAdasDetector) -> None:
    gallery = gallery_with(adas, data_dir)
    crops = [cv2.imread(str(path)) for path in sorted(CUHK03.glob("*/*_05.jpg"))[:3]]
    person = gallery.enroll(session, "Walker", [Upload(png(c), f"c{i}.png") for i, c in enumerate(crops)])
    assert all(image.box is not None for image in person.images)
    capture = cv2.VideoCapture(str(PETS))
    _, frame = capture.read()
    capture.release()
    with pytest.raises(NotOnePerson, match=r"frame\.png: [3-9] persons found"):
        gallery.add_images(session, person.id, [Upload(png(frame), "frame.png")])
    with pytest.raises(NotOnePerson, match=r"wall\.png: no person found"):
        gallery.add_images(session, person.id, [Upload(png(blank()), "wall.png")])
    assert len(session.scalars(sa.select(Image)).all()) == 3
