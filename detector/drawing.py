"""Drawing numbered person boxes on an image for display."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from base.images import BGRImage, check_bgr_image
from detector.base import Detection

# Bright BGR colours that stay readable with black text and a black outline on any background.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 255, 255), (255, 255, 0), (255, 0, 255), (0, 255, 0), (0, 165, 255), (255, 160, 160),
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BLACK = (0, 0, 0)


def draw_detections(image: BGRImage, detections: Sequence[Detection],
                    labels: Sequence[str] | None = None) -> BGRImage:
    """Draw each box with a black-edged coloured frame and its label in a filled tag outside it.

    A tag sits above its box, else below it; where neither has room (a box as tall as the
    image: a crop) a band is added above the image for it, so no tag hides the person. Line
    width and text size grow with the image, so that boxes stay visible when it is shown
    scaled down.

    Args:
        image: (H, W, 3) uint8 BGR array; left unchanged.
        detections: boxes in pixels of ``image``.
        labels: one text per box; by default "1", "2", ... in the order given.

    Returns:
        A copy of ``image`` with the boxes drawn, with the band on top if one was needed.

    Raises:
        TypeError: ``image`` is not an (H, W, 3) uint8 array.
        ValueError: ``labels`` and ``detections`` differ in length.
    """
    check_bgr_image(image)
    if labels is None:
        labels = [str(i) for i in range(1, len(detections) + 1)]
    if len(labels) != len(detections):
        raise ValueError(f"got {len(labels)} labels for {len(detections)} detections")
    height, width = image.shape[:2]
    line = max(2, round(min(height, width) / 200))
    scale = max(0.5, min(height, width) / 600)
    text_weight = max(1, line // 2)
    sizes = [_tag_size(label, scale, text_weight) for label in labels]
    band = max((tag_h for d, (_, tag_h) in zip(detections, sizes)
                if d.y < tag_h and d.y + d.h + tag_h > height), default=0)
    canvas: BGRImage = np.pad(image, ((band, 0), (0, 0), (0, 0)), constant_values=255)
    boxes = [Detection(d.x, d.y + band, d.w, d.h, d.score) for d in detections]
    for i, d in enumerate(boxes):
        corner = (d.x + d.w - 1, d.y + d.h - 1)
        cv2.rectangle(canvas, (d.x, d.y), corner, _BLACK, line + 2)
        cv2.rectangle(canvas, (d.x, d.y), corner, PALETTE[i % len(PALETTE)], line)
    for i, (d, label) in enumerate(zip(boxes, labels)):
        _draw_tag(canvas, d, label, PALETTE[i % len(PALETTE)], scale, text_weight)
    return canvas


def _tag_size(label: str, scale: float, weight: int) -> tuple[int, int]:
    """Return the width and height of ``label``'s tag."""
    (text_w, text_h), baseline = cv2.getTextSize(label, _FONT, scale, weight)
    pad = max(2, text_h // 4)
    return text_w + 2 * pad, text_h + baseline + 2 * pad


def _draw_tag(canvas: BGRImage, box: Detection, label: str, colour: tuple[int, int, int],
              scale: float, weight: int) -> None:
    """Draw ``label`` in a filled tag above the box's top-left corner, else below its bottom-left one."""
    (_, text_h), _ = cv2.getTextSize(label, _FONT, scale, weight)
    pad = max(2, text_h // 4)
    tag_w, tag_h = _tag_size(label, scale, weight)
    left = min(max(box.x, 0), max(canvas.shape[1] - tag_w, 0))
    top = box.y - tag_h if box.y - tag_h >= 0 else box.y + box.h
    cv2.rectangle(canvas, (left, top), (left + tag_w - 1, top + tag_h - 1), colour, cv2.FILLED)
    cv2.rectangle(canvas, (left, top), (left + tag_w - 1, top + tag_h - 1), _BLACK, 1)
    cv2.putText(canvas, label, (left + pad, top + pad + text_h), _FONT, scale, _BLACK, weight,
                cv2.LINE_AA)
