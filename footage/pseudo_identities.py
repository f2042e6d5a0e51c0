"""Pseudo-identities from unlabelled footage: tracks joined into persons under camera-time constraints.

Each track is one person. Two tracks seen on the same camera at overlapping times are two
persons (nobody stands twice in one frame). Beyond that, tracks whose vectors are alike are
joined greedily, most alike first (single linkage), as long as no two tracks of the merged
group overlap on one camera: a person who left the view and came back, or walked past
another camera, becomes one identity. What comes out trains ``reid adapt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

NEIGHBOURS = 10


@dataclass(frozen=True)
class TrackSummary:
    """What the mining needs of one track: where and when it was seen and its unit mean vector."""

    camera: str
    start: float
    end: float
    vector: NDArray[np.float32]


def overlaps(a: TrackSummary, b: TrackSummary) -> bool:
    """Tell whether two tracks were seen on the same camera at overlapping times."""
    return a.camera == b.camera and a.start <= b.end and b.start <= a.end


def mine_identities(tracks: Sequence[TrackSummary], link_threshold: float,
                    neighbours: int = NEIGHBOURS) -> list[int]:
    """Label each track with a pseudo-identity in 0..K-1 (first appearance order).

    Candidate links are each track's ``neighbours`` most similar tracks scoring at least
    ``link_threshold`` (cosine); they are taken most similar first, and a link that would put
    two overlapping tracks (``overlaps``) into one identity is skipped.

    Raises:
        ValueError: ``link_threshold`` outside [-1, 1], or a vector of the wrong shape.
    """
    if not -1.0 <= link_threshold <= 1.0:
        raise ValueError(f"link_threshold must be a cosine similarity in [-1, 1], got {link_threshold}")
    if not tracks:
        return []
    vectors = np.stack([np.asarray(track.vector, dtype=np.float32) for track in tracks])
    if vectors.ndim != 2:
        raise ValueError(f"track vectors must be 1-d and of one size, got {vectors.shape}")
    parent = list(range(len(tracks)))
    members = {i: [i] for i in range(len(tracks))}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for _score, i, j in candidate_links(vectors, link_threshold, neighbours):
        a, b = root(i), root(j)
        if a == b or any(overlaps(tracks[m], tracks[n]) for m in members[a] for n in members[b]):
            continue
        parent[b] = a
        members[a].extend(members.pop(b))
    labels: dict[int, int] = {}
    return [labels.setdefault(root(i), len(labels)) for i in range(len(tracks))]


def candidate_links(vectors: NDArray[np.float32], threshold: float, neighbours: int,
                    chunk: int = 1024) -> list[tuple[float, int, int]]:
    """Return (score, i, j), i < j, for each row's ``neighbours`` nearest rows scoring >= ``threshold``,
    most similar first."""
    links: set[tuple[float, int, int]] = set()
    keep = min(neighbours, len(vectors) - 1)
    if keep <= 0:
        return []
    for start in range(0, len(vectors), chunk):
        scores = vectors[start:start + chunk] @ vectors.T
        rows = np.arange(len(scores))
        scores[rows, start + rows] = -np.inf  # no track links to itself
        nearest = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        for row, columns in enumerate(nearest):
            i = start + row
            for j in columns.tolist():
                if scores[row, j] >= threshold:
                    links.add((float(scores[row, j]), min(i, j), max(i, j)))
    return sorted(links, key=lambda link: (-link[0], link[1], link[2]))
