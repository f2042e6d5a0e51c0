"""Decoding uploaded bytes into BGR images, apart from any model."""

from __future__ import annotations

import cv2
import numpy as np

from embedder.base import BGRImage


class ImageError(ValueError):
    """An upload that is not a usable image; the message says why."""


def decode_image(data: bytes, *, min_width: int = 1, min_height: int = 1) -> BGRImage:
    """Decode JPEG/PNG/BMP/WebP bytes into an (H, W, 3) uint8 BGR array.

    Raises:
        ImageError: empty input, bytes that are not a complete image, or an image smaller
            than ``min_width`` x ``min_height`` pixels.
    """
    if not data:
        raise ImageError("the file is empty")
    if _is_truncated(data):
        raise ImageError("the image file is truncated")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError("the file is not an image OpenCV can decode (JPEG, PNG, BMP, WebP)")
    height, width = image.shape[:2]
    if width < min_width or height < min_height:
        raise ImageError(
            f"the image is {width}x{height} pixels, too small to hold a person "
            f"(at least {min_width}x{min_height} needed)")
    return image


def _is_truncated(data: bytes) -> bool:
    """Tell whether a JPEG lacks its end marker or a PNG its IEND chunk."""
    if data[:2] == b"\xff\xd8":
        return b"\xff\xd9" not in data[-1024:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-64:]
    return False


def encode_jpeg(image: BGRImage, quality: int = 90) -> bytes:
    """Encode a BGR image as JPEG bytes."""
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError("could not encode the image as JPEG")
    return buffer.tobytes()
