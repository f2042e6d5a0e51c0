"""Image sizes read from headers alone, and decode_image's refusal of decompression bombs."""

from __future__ import annotations

import struct
import time

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from base.image_header import image_size
from base.images import ImageError, decode_image
from tests.hardening.corpus import jpeg_claiming, png_bomb, png_claiming

IMAGE = np.random.default_rng(0).integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
ENCODINGS = {
    "png": (".png", []), "jpeg": (".jpg", []), "progressive jpeg": (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    "bmp": (".bmp", []), "webp lossy": (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
    "webp lossless": (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]), "gif": (".gif", []),
}


def encoded(name: str) -> bytes:
    ext, params = ENCODINGS[name]
    return cv2.imencode(ext, IMAGE, params)[1].tobytes()


@pytest.mark.parametrize("name", ENCODINGS)
def test_size_of_real_files(name: str) -> None:
    assert image_size(encoded(name)) == (53, 37)


def test_jpeg_skips_an_exif_thumbnail_and_fill_bytes() -> None:
    thumbnail = jpeg_claiming(16, 16)
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(thumbnail)) + b"Exif\x00\x00" + thumbnail
    data = encoded("jpeg")
    assert image_size(data[:2] + app1 + b"\xff\xff" + data[2:]) == (53, 37)


def test_jpeg_scan_before_frame_is_unknown() -> None:
    assert image_size(b"\xff\xd8\xff\xda\x00\x08" + bytes(6) + b"\xff\xd9") is None


def test_bmp_top_down_and_os2_headers() -> None:
    data = bytearray(encoded("bmp"))
    data[22:26] = struct.pack("<i", -37)
    assert image_size(bytes(data)) == (53, 37)
    core = b"BM" + bytes(12) + struct.pack("<IHHHH", 12, 640, 480, 1, 24)
    assert image_size(core) == (640, 480)


def test_webp_extended_canvas() -> None:
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (30_000 - 1).to_bytes(3, "little") * 2
    assert image_size(b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x) == (30_000, 30_000)


def test_gif_frame_beyond_the_logical_screen() -> None:
    comment = b"\x21\xfe\x03abc\x00"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 30_000, 20_000, 0)
    data = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0x80, 0, 0) + bytes(6) + comment + frame
    assert image_size(data) == (30_000, 20_000)


@pytest.mark.parametrize("data", [
    b"", b"hello", b"GIF89a" + bytes(7) + b"\x3b", b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"\xff\xd8\xff", b"BM",
    b"GIF89a\x01", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00",
    cv2.imencode(".tiff", IMAGE)[1].tobytes(), cv2.imencode(".ppm", IMAGE)[1].tobytes(),
], ids=["empty", "text", "gif without frame", "png signature", "jpeg soi", "jpeg soi ff", "bm", "gif short",
        "wave", "webp short", "tiff", "ppm"])
def test_unknown_or_cut_headers_give_none(data: bytes) -> None:
    assert image_size(data) is None


@pytest.mark.parametrize("data", [
    b"\xff\xd8" + b"\x01" * (32 << 20), b"\xff\xd8" + b"\xff" * (32 << 20), b"\xff\xd8" + b"\xff\x01" * (16 << 20),
    b"GIF89a" + bytes(7) + b"\x21\xfe" + b"\x01\x00" * (16 << 20),
], ids=["jpeg junk", "jpeg fill bytes", "jpeg empty markers", "gif tiny sub-blocks"])
def test_32_mib_of_header_is_given_up_on_quickly(data: bytes) -> None:
    start = time.perf_counter()
    assert image_size(data) is None
    assert time.perf_counter() - start < 2.0  # a byte-by-byte Python walk would take many seconds


@pytest.mark.parametrize("name", ENCODINGS)
def test_every_prefix_is_read_without_error(name: str) -> None:
    data = encoded(name)
    for end in range(min(len(data), 400)):
        assert image_size(data[:end]) in (None, (53, 37))


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(prefix=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"BM", b"RIFF\x00\x00\x00\x00WEBP",
                               b"GIF89a", b""]),
       rest=st.binary(max_size=200))
def test_random_bytes_after_a_signature_never_raise(prefix: bytes, rest: bytes) -> None:
    size = image_size(prefix + rest)
    assert size is None or (len(size) == 2 and all(isinstance(n, int) and n >= 0 for n in size))


def test_decode_refuses_a_claimed_size_over_the_limit_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*_args: object) -> None:
        raise AssertionError("cv2.imdecode must not be reached")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    for data, claim in [(png_claiming(30_000, 30_000), "30000 x 30000"), (png_bomb(), "8000 x 6000"),
                        (jpeg_claiming(9_000, 9_000), "9000 x 9000")]:
        with pytest.raises(ImageError, match=f"the image claims {claim} pixels, more than the limit of 40000000"):
            decode_image(data, max_pixels=40_000_000)


def test_decode_limit_is_inclusive_and_optional() -> None:
    data = encoded("png")
    assert decode_image(data, max_pixels=53 * 37).shape == (37, 53, 3)
    with pytest.raises(ImageError, match="claims 53 x 37 pixels, more than the limit of 1960"):
        decode_image(data, max_pixels=53 * 37 - 1)
    tiff = cv2.imencode(".tiff", IMAGE)[1].tobytes()
    assert decode_image(tiff).shape == (37, 53, 3)
    with pytest.raises(ImageError, match="not an image in an accepted format"):
        decode_image(tiff, max_pixels=40_000_000)
