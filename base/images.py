"""BGR images: the type, the one check of it, and decoding, encoding and reading them."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from base.image_header import image_size

BGRImage = NDArray[np.uint8]


class ImageError(ValueError):
    """An upload that is not a usable image; the message says why."""


def check_bgr_image(image: object, name: str = "image") -> None:
    """Check that ``image`` is a non-empty (H, W, 3) uint8 array.

    Raises:
        TypeError: it is not an (H, W, 3) uint8 array; the message says what it is.
        ValueError: it has no rows or no columns.
    """
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8
            and image.ndim == 3 and image.shape[2] == 3):
        got = (f"{image.dtype} array of shape {image.shape}"
               if isinstance(image, np.ndarray) else type(image).__name__)
        raise TypeError(f"{name} must be an (H, W, 3) uint8 BGR array, got {got}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {image.shape}")


def read_image(path: Path) -> BGRImage:
    """Read an image file into an (H, W, 3) uint8 BGR array.

    Raises:
        ImageError: the file cannot be read or decoded; the message names the file.
    """
    try:
        return decode_image(Path(path).read_bytes())
    except (OSError, ImageError) as error:
        raise ImageError(f"{path}: {error}") from error


def decode_image(data: bytes, *, min_width: int = 1, min_height: int = 1,
                 max_pixels: int | None = None) -> BGRImage:
    """Decode JPEG/PNG/BMP/WebP bytes into an (H, W, 3) uint8 BGR array.

    Args:
        max_pixels: with a limit, only JPEG, PNG, BMP, WebP and GIF are accepted, and an image
            whose header claims more pixels is refused before any pixel is decoded (a
            decompression bomb); None decodes whatever OpenCV reads.

    Raises:
        ImageError: empty input, bytes that are not a complete image, an image claiming more
            than ``max_pixels`` pixels, or one smaller than ``min_width`` x ``min_height``.
    """
    if not data:
        raise ImageError("the file is empty")
    if _is_truncated(data):
        raise ImageError("the image file is truncated")
    if max_pixels is not None:
        _check_claimed_size(data, max_pixels)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None:
        raise ImageError("the file is not an image OpenCV can decode (JPEG, PNG, BMP, WebP)")
    height, width = image.shape[:2]
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(f"the image is {width} x {height} pixels, more than the limit of {max_pixels}")
    if width < min_width or height < min_height:
        raise ImageError(
            f"the image is {width}x{height} pixels, too small to hold a person "
            f"(at least {min_width}x{min_height} needed)")
    return cast(BGRImage, image)  # IMREAD_COLOR decodes to 8-bit BGR; OpenCV's stubs type any image


def _check_claimed_size(data: bytes, max_pixels: int) -> None:
    """Refuse an unknown format, or a header claiming more than ``max_pixels`` pixels."""
    size = image_size(data)
    if size is None:
        raise ImageError("the file is not an image in an accepted format "
                         "(JPEG, PNG, BMP, WebP, GIF), or its header is damaged")
    width, height = size
    if width * height > max_pixels:
        raise ImageError(f"the image claims {width} x {height} pixels, "
                         f"more than the limit of {max_pixels}")


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


def encode_png(image: BGRImage) -> bytes:
    """Encode a BGR image as PNG bytes (lossless: decoding gives the same pixels back)."""
    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise ImageError("could not encode the image as PNG")
    return buffer.tobytes()


def make_thumbnail(data: bytes, height: int, quality: int = 85) -> bytes:
    """Return a JPEG at most ``height`` pixels high of the image file ``data`` (never upscaled).

    Large JPEGs are decoded at 1/2, 1/4 or 1/8 of their size (libjpeg scales while decoding),
    so a thumbnail of a huge upload needs little memory and time.

    Raises:
        ImageError: ``data`` is not an image OpenCV can decode.
    """
    size = image_size(data)
    flags = cv2.IMREAD_COLOR
    for factor, reduced in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                            (2, cv2.IMREAD_REDUCED_COLOR_2)):
        if size is not None and size[1] // factor >= height:
            flags = reduced
            break
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags) if data else None
    if image is None:
        raise ImageError("the file is not an image OpenCV can decode")
    if image.shape[0] > height:
        width = max(1, round(image.shape[1] * height / image.shape[0]))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return encode_jpeg(cast(BGRImage, image), quality=quality)  # a COLOR flag decodes 8-bit BGR
