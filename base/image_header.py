"""Reading an image's width and height from its header, without decoding any pixels.

Used to refuse decompression bombs: a few hundred bytes of header are enough to learn how
much memory a decoder would allocate, so oversized images are refused before ``cv2.imdecode``.
"""

from __future__ import annotations

import re
import struct

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers that carry the frame size (not DHT C4, JPG C8 or DAC CC).
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7,
                       0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Markers that stand alone, without a length field: TEM, RST0-7, SOI.
_JPEG_NO_LENGTH = frozenset({0x01, *range(0xD0, 0xD9)})
_JPEG_FILL = re.compile(rb"\xff+")
# Real files have a few dozen segments before the frame header (or GIF blocks before the
# first frame); a header that goes on longer is treated as damaged, bounding the work.
_MAX_STEPS = 4096


def image_size(data: bytes) -> tuple[int, int] | None:
    """Return ``(width, height)`` as the header of a PNG, JPEG, BMP, WebP or GIF file claims it.

    Args:
        data: the file's bytes (only the header is read; pixels are never decoded).

    Returns:
        The claimed size in pixels, or None when the format is not one of those five or the
        header is cut short or malformed.
    """
    for reader in (_png, _jpeg, _bmp, _webp, _gif):
        try:
            size = reader(data)
        except (struct.error, IndexError, ValueError):
            return None
        if size is not None:
            return size
    return None


def _png(data: bytes) -> tuple[int, int] | None:
    """IHDR is the first chunk: length, type, then width and height (big-endian)."""
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg(data: bytes) -> tuple[int, int] | None:
    """Walk the marker segments (skipping APPn, so an EXIF thumbnail is not mistaken) to SOFn.

    Between segments, junk bytes, fill bytes and stuffed ``FF 00`` are skipped as libjpeg's
    ``next_marker`` does, so the frame found is the one the decoder would use.
    """
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    for _ in range(_MAX_STEPS):  # ValueError or IndexError when the data ends first
        fill = _JPEG_FILL.match(data, data.index(b"\xff", pos))
        assert fill is not None, "the match starts at an FF byte"
        pos = fill.end()
        marker = data[pos]
        pos += 1
        if marker == 0x00 or marker in _JPEG_NO_LENGTH:
            continue
        if marker in (0xD9, 0xDA):
            return None  # end of image or start of scan before any frame header
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 3:pos + 7])
            return width, height
        if length < 2:
            return None
        pos += length
    return None


def _bmp(data: bytes) -> tuple[int, int] | None:
    """BITMAPCOREHEADER has 16-bit sizes; the later headers signed 32-bit (negative: top-down)."""
    if not data.startswith(b"BM"):
        return None
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size == 12:
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def _webp(data: bytes) -> tuple[int, int] | None:
    """RIFF container; the first chunk is VP8 (lossy), VP8L (lossless) or VP8X (extended)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        canvas = data[24:30]
        if len(canvas) < 6:
            return None
        return (int.from_bytes(canvas[:3], "little") + 1,
                int.from_bytes(canvas[3:], "little") + 1)
    return None


def _gif(data: bytes) -> tuple[int, int] | None:
    """The logical screen size, grown to the first frame's extent should that reach beyond it."""
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        return None
    width, height, flags = struct.unpack("<HHB", data[6:11])
    pos = 13 + ((3 << ((flags & 0x07) + 1)) if flags & 0x80 else 0)
    in_extension = False
    for _ in range(_MAX_STEPS):
        if in_extension:  # data sub-blocks, up to an empty one
            size = data[pos]
            pos += size + 1
            in_extension = size != 0
        elif data[pos] == 0x2C:  # image descriptor: left, top, width, height
            left, top, frame_w, frame_h = struct.unpack("<HHHH", data[pos + 1:pos + 9])
            return max(width, left + frame_w), max(height, top + frame_h)
        elif data[pos] == 0x21:  # extension: introducer and label, then sub-blocks
            pos += 2
            in_extension = True
        else:
            return None  # only extensions may come before the first frame
    return None
