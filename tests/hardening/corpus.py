"""Hostile and broken files, crafted byte by byte: each is small, deterministic and named."""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from collections.abc import Callable

import cv2
import numpy as np

from tests.conftest import jpeg_bytes, person_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC of type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG (well-formed chunks, valid CRCs) whose IHDR claims ``width`` x ``height``."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A tiny JPEG: SOI, a JFIF APP0, a baseline SOF0 claiming ``width`` x ``height``, EOI."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    components = b"".join(bytes([i, 0x11, 0]) for i in (1, 2, 3))
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + components
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


@functools.cache
def png_bomb() -> bytes:
    """A real, decodable 8000 x 6000 1-bit PNG of about 6 KB: 144 MB once decoded to BGR."""
    width, height = 8000, 6000
    rows = bytes((width // 8 + 1) * height)  # filter byte 0 and all-black pixels per row
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(rows, 9)) + png_chunk(b"IEND", b""))


@functools.cache
def good_jpeg(person: int = 9, variant: int = 0) -> bytes:
    return jpeg_bytes(person_image(person, variant))


@functools.cache
def good_png() -> bytes:
    return cv2.imencode(".png", person_image(9))[1].tobytes()


def flipped(data: bytes, start: int, count: int = 16) -> bytes:
    """``data`` with ``count`` bytes from ``start`` inverted."""
    out = bytearray(data)
    for i in range(start, start + count):
        out[i] ^= 0xFF
    return bytes(out)


def garbage(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).bytes(n)


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("person.jpg", good_jpeg())
    return buffer.getvalue()


PDF = (b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
       b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n"
       b"trailer <</Root 1 0 R>>\n%%EOF\n")
SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="128" '
       b'onload="alert(1)"><script>fetch("/api/persons").then(r => r.text()).then(alert)</script>'
       b'<rect width="64" height="128" fill="red"/></svg>')

# name -> (file bytes, client file name, expected words in the message)
BAD_FILES: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "text": (lambda: b"hello, this is a shopping list\n", "list.txt", "the file is not an image"),
    "pdf": (lambda: PDF, "report.pdf", "the file is not an image"),
    "svg with script": (lambda: SVG, "face.svg", "the file is not an image"),
    "zip": (zip_archive, "photos.zip", "the file is not an image"),
    "zero bytes": (lambda: b"", "empty.jpg", "the file is empty"),
    "truncated jpeg": (lambda: good_jpeg()[:len(good_jpeg()) // 2], "cut.jpg", "the image file is truncated"),
    "truncated png": (lambda: good_png()[:len(good_png()) // 2], "cut.png", "the image file is truncated"),
    "png flipped bytes": (lambda: flipped(good_png(), len(good_png()) // 2), "flipped.png",
                          "the file is not an image OpenCV can decode"),
    "jpeg flipped header": (lambda: flipped(good_jpeg(), 20, 200), "flipped.jpg",
                            ("the file is not an image in an accepted format (JPEG, PNG, BMP, WebP, GIF), "
                             "or its header is damaged")),
    "jpeg header then garbage": (lambda: good_jpeg()[:600] + garbage(3000) + b"\xff\xd9", "junk.jpg",
                                 "the file is not an image OpenCV can decode"),
    "png header then garbage": (lambda: good_png()[:33] + garbage(3000) + png_chunk(b"IEND", b""),
                                "junk.png", "the file is not an image OpenCV can decode"),
    "png claiming 30000x30000": (lambda: png_claiming(30_000, 30_000), "bomb.png",
                                 "the image claims 30000 x 30000 pixels, more than the limit of 40000000"),
    "jpeg claiming 30000x30000": (lambda: jpeg_claiming(30_000, 30_000), "bomb.jpg",
                                  "the image claims 30000 x 30000 pixels, more than the limit of 40000000"),
    "png bomb 8000x6000": (png_bomb, "bomb.png", "the image claims 8000 x 6000 pixels"),
    "tiff (not accepted)": (lambda: cv2.imencode(".tiff", person_image(9))[1].tobytes(), "a.tiff",
                            "the file is not an image in an accepted format"),
    "too small": (lambda: cv2.imencode(".png", np.zeros((20, 10, 3), np.uint8))[1].tobytes(),
                  "tiny.png", "the image is 10x20 pixels, too small to hold a person"),
}


def bad_file(case: str) -> tuple[bytes, str, str]:
    """Return the bytes, file name and expected message words of a ``BAD_FILES`` case."""
    make, filename, message = BAD_FILES[case]
    return make(), filename, message
