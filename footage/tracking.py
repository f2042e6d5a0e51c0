"""Online multi-person tracking by box overlap and appearance, in plain numpy.

Each track predicts where its box is now from its last box and its velocity (centre pixels
per frame). Predicted and detected boxes are compared by *buffered* IoU: both boxes grow on
every side by ``buffer * seconds since the track was last seen`` of their size, so that a
person who moved between sparse analysed frames, or was missed for a while, still overlaps
(Yang et al., "Hard to Track Objects with Irregular Motions and Similar Appearances", 2023).
A pair is a candidate when its overlap reaches ``min_overlap`` and its appearance cosine
similarity reaches ``min_similarity``; candidates are matched greedily by
``overlap_weight * overlap + (1 - overlap_weight) * likeness``, where the likeness rescales
the similarity from [min_similarity, 1] to [0, 1]. Strong detections are matched first;
weak ones (low detector scores) then only extend the tracks left unmatched (as in ByteTrack,
Zhang et al. 2022). Unmatched strong detections start tracks; tracks unseen for
``max_age_s`` end, and ended tracks with fewer than ``min_detections`` detections are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from base.boxes import iou_matrix

APPEARANCE_MOMENTUM = 0.7  # share of the old appearance kept at each match
VELOCITY_MOMENTUM = 0.5  # share of the old velocity kept at each match


@dataclass(slots=True, eq=False)
class Track:
    """One person followed over frames: where, when, and what they look like.

    Attributes:
        track_id: unique within the tracker, in order of creation.
        frames: frame index of each detection, increasing.
        boxes: (x, y, w, h) float box of each detection.
        appearance: (D,) unit vector, a running mean of the detections' appearance.
        velocity: (2,) centre motion in pixels per frame.
    """

    track_id: int
    frames: list[int]
    boxes: list[NDArray[np.float64]]
    appearance: NDArray[np.float32]
    velocity: NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))

    @property
    def last_frame(self) -> int:
        """Return the frame of the latest detection."""
        return self.frames[-1]

    def predict(self, frame: int) -> NDArray[np.float64]:
        """Return the (x, y, w, h) box expected at ``frame``: the last one moved by the velocity."""
        box = self.boxes[-1].copy()
        box[:2] += self.velocity * (frame - self.last_frame)
        return box

    def add(self, frame: int, box: NDArray[np.float64], appearance: NDArray[np.float32]) -> None:
        """Append a matched detection and update the velocity and appearance."""
        gap = frame - self.last_frame
        assert gap > 0, (frame, self.last_frame)
        step = (_centre(box) - _centre(self.boxes[-1])) / gap
        self.velocity = (step if len(self.frames) == 1
                         else VELOCITY_MOMENTUM * self.velocity + (1 - VELOCITY_MOMENTUM) * step)
        mixed = APPEARANCE_MOMENTUM * self.appearance + (1 - APPEARANCE_MOMENTUM) * appearance
        self.appearance = (mixed / max(float(np.linalg.norm(mixed)), 1e-12)).astype(np.float32)
        self.frames.append(frame)
        self.boxes.append(box)


def _centre(box: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return the (2,) centre of an (x, y, w, h) box."""
    return box[:2] + box[2:] / 2


def buffer_boxes(boxes: NDArray[np.float64], ratio: NDArray[np.float64]) -> NDArray[np.float64]:
    """Grow (N, 4) (x, y, w, h) boxes on every side by ``ratio`` (N,) of their width and height."""
    grown = boxes.copy()
    grown[:, :2] -= boxes[:, 2:] * ratio[:, None]
    grown[:, 2:] += 2 * boxes[:, 2:] * ratio[:, None]
    return grown


class Tracker:
    """Links detections of successive analysed frames of one video into tracks.

    Args:
        fps: the video's frame rate, to turn frame gaps into seconds.
        min_overlap: least buffered IoU of a match, in [0, 1].
        min_similarity: least appearance cosine similarity of a match, in [-1, 1].
        overlap_weight: weight of overlap against similarity in the matching score.
        buffer: box growth per second since last seen, as a share of the box size.
        max_age_s: tracks unseen for longer end.
        min_detections: ended tracks with fewer detections are dropped.
    """

    def __init__(self, fps: float, *, min_overlap: float = 0.1, min_similarity: float = 0.9,
                 overlap_weight: float = 0.5, buffer: float = 0.3, max_age_s: float = 2.0,
                 min_detections: int = 3) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = fps
        self.min_overlap = min_overlap
        self.min_similarity = min_similarity
        self.overlap_weight = overlap_weight
        self.buffer = buffer
        self.max_age_s = max_age_s
        self.min_detections = min_detections
        self._alive: list[Track] = []
        self._next_id = 0

    def update(self, frame: int, boxes: NDArray[np.integer | np.floating], appearance: NDArray[np.float32],
               weak: NDArray[np.bool_] | None = None) -> NDArray[np.int64]:
        """Match one frame's detections to the tracks, starting tracks for the unmatched.

        Strong detections are matched first; weak ones then extend the tracks still
        unmatched, but never start a track.

        Args:
            frame: the frame index, greater than any given before.
            boxes: (N, 4) (x, y, w, h) boxes in pixels.
            appearance: (N, D) unit appearance vectors of the same detections.
            weak: (N,) True for weak detections; None means all are strong.

        Returns:
            (N,) the track id each detection joined, -1 for weak detections left unmatched.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(appearance) != len(boxes):
            raise ValueError(f"got {len(boxes)} boxes but {len(appearance)} appearance vectors")
        weak = np.zeros(len(boxes), dtype=bool) if weak is None else np.asarray(weak, dtype=bool)
        ids = np.full(len(boxes), -1, dtype=np.int64)
        tracks = [t for t in self._alive if (frame - t.last_frame) / self.fps <= self.max_age_s]
        for columns in (np.flatnonzero(~weak), np.flatnonzero(weak)):
            if not (tracks and len(columns)):
                continue
            matched = set()
            for row, col in self._match(frame, tracks, boxes[columns], appearance[columns]):
                detection = int(columns[col])
                tracks[row].add(frame, boxes[detection], appearance[detection])
                ids[detection] = tracks[row].track_id
                matched.add(row)
            tracks = [t for i, t in enumerate(tracks) if i not in matched]
        for col in np.flatnonzero((ids < 0) & ~weak).tolist():
            track = Track(self._next_id, [frame], [boxes[col]],
                          np.asarray(appearance[col], dtype=np.float32))
            self._alive.append(track)
            ids[col] = track.track_id
            self._next_id += 1
        return ids

    def _match(self, frame: int, tracks: list[Track], boxes: NDArray[np.float64],
               appearance: NDArray[np.float32]) -> list[tuple[int, int]]:
        """Return greedy (track row, detection column) matches, best combined score first."""
        predicted = np.stack([t.predict(frame) for t in tracks])
        ratio = np.array([self.buffer * (frame - t.last_frame) / self.fps for t in tracks])
        overlap = np.stack([
            iou_matrix(buffer_boxes(predicted[i:i + 1], ratio[i:i + 1]),
                       buffer_boxes(boxes, np.full(len(boxes), ratio[i])))[0]
            for i in range(len(tracks))])
        similarity = np.stack([t.appearance for t in tracks]) @ appearance.T
        likeness = (similarity - self.min_similarity) / max(1.0 - self.min_similarity, 1e-6)
        score = self.overlap_weight * overlap + (1 - self.overlap_weight) * likeness
        allowed = (overlap >= self.min_overlap) & (similarity >= self.min_similarity)
        order = np.argsort(-np.where(allowed, score, -np.inf), axis=None, kind="stable")
        used_rows: set[int] = set()
        used_cols: set[int] = set()
        matches = []
        for flat in order.tolist():
            row, col = divmod(flat, len(boxes))
            if not allowed[row, col]:
                break
            if row in used_rows or col in used_cols:
                continue
            used_rows.add(row)
            used_cols.add(col)
            matches.append((row, col))
        return matches

    def seconds_since_seen(self, frame: int) -> float | None:
        """Return the time since any alive track was last matched, or None if none is alive."""
        ages = [(frame - t.last_frame) / self.fps for t in self._alive]
        live = [age for age in ages if age <= self.max_age_s]
        return min(live) if live else None

    def pop_finished(self, frame: int | None = None) -> tuple[list[Track], list[Track]]:
        """Remove the tracks that ended by ``frame`` (all of them when None).

        Returns:
            The ended tracks with at least ``min_detections`` detections, and those with fewer
            (to be dropped), each in order of creation.
        """
        ended = [t for t in self._alive
                 if frame is None or (frame - t.last_frame) / self.fps > self.max_age_s]
        self._alive = [t for t in self._alive if t not in ended]
        kept = [t for t in ended if len(t.frames) >= self.min_detections]
        dropped = [t for t in ended if len(t.frames) < self.min_detections]
        return kept, dropped
