"""Skipping static frames: MOG2 background subtraction on small grey frames.

Policy (``needs_analysis``): a sampled frame is analysed when enough of it moves, or when a
track was seen within the hold time, so a person who stops walking is still followed (and
stays one track) while the detector finds them; once nobody has been seen for the hold
time, static frames are skipped. The first frame is always analysed (there is no
background yet).
"""

from __future__ import annotations

import cv2
import numpy as np

from base.images import BGRImage


class MotionMeter:
    """Measures the share of moving pixels in successive frames of one video.

    Args:
        width: frames are shrunk to this width (aspect kept) before modelling.
        history: frames the background model remembers.
        var_threshold: squared Mahalanobis distance above which a pixel is foreground.
    """

    def __init__(self, width: int = 320, history: int = 50, var_threshold: float = 16.0) -> None:
        if width < 8:
            raise ValueError(f"width must be at least 8 pixels, got {width}")
        self.width = width
        self._model = cv2.createBackgroundSubtractorMOG2(
            history=history, varThreshold=var_threshold, detectShadows=False)
        self._frames = 0

    def moving_fraction(self, frame: BGRImage) -> float:
        """Update the background with ``frame`` (H, W, 3) and return its moving share in [0, 1].

        The first frame returns 1.0: everything is new.
        """
        height, width = frame.shape[:2]
        small_height = max(1, round(height * self.width / width))
        grey = cv2.cvtColor(cv2.resize(frame, (self.width, small_height),
                                       interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
        mask = cv2.medianBlur(self._model.apply(grey), 3)
        self._frames += 1
        if self._frames == 1:
            return 1.0
        return float(np.count_nonzero(mask)) / mask.size


def needs_analysis(moving_fraction: float, threshold: float,
                   seconds_since_track: float | None, hold_s: float) -> bool:
    """Decide whether a sampled frame is analysed (see the module docstring).

    Args:
        moving_fraction: the frame's share of moving pixels.
        threshold: frames moving less are static.
        seconds_since_track: time since a track was last matched; None if none is alive.
        hold_s: how long static frames are analysed after a track was last matched.
    """
    if moving_fraction >= threshold:
        return True
    return seconds_since_track is not None and seconds_since_track <= hold_s
