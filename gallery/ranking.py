"""Turning image hits into ranked persons: best score per person, threshold, margin."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class PersonMatch:
    """One candidate person for a query, with the best-scoring image of theirs."""

    person_id: int
    name: str
    score: float
    match: bool
    image_id: int

    def to_dict(self) -> dict:
        return {"person_id": self.person_id, "name": self.name, "score": round(self.score, 6),
                "match": self.match, "image_id": self.image_id}


def best_per_person(scores: NDArray[np.float32], image_ids: NDArray[np.int64],
                    owners: dict[int, tuple[int, str]]) -> list[tuple[int, str, float, int]]:
    """Keep each person's best image hit, ordered by score descending.

    Args:
        scores: (K,) similarities of the image hits, descending as FAISS returns them.
        image_ids: (K,) their image ids; -1 marks no hit.
        owners: image id -> (person id, person name); ids missing from it are skipped
            (deleted since the index was read).

    Returns:
        (person id, name, best score, best image id) per person.
    """
    best: dict[int, tuple[int, str, float, int]] = {}
    for score, image_id in zip(scores.tolist(), image_ids.tolist()):
        if image_id < 0 or image_id not in owners:
            continue
        person_id, name = owners[image_id]
        if person_id not in best or score > best[person_id][2]:
            best[person_id] = (person_id, name, float(score), int(image_id))
    return sorted(best.values(), key=lambda hit: (-hit[2], hit[0]))


def decide(hits: list[tuple[int, str, float, int]], threshold: float, top_k: int
           ) -> tuple[list[PersonMatch], float | None]:
    """Apply the threshold to the top ``top_k`` persons; return them and the best-vs-second margin."""
    matches = [PersonMatch(pid, name, score, score >= threshold, image_id)
               for pid, name, score, image_id in hits[:top_k]]
    margin = hits[0][2] - hits[1][2] if len(hits) >= 2 else None
    return matches, margin
