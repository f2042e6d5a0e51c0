"""The colour descriptor used for tracking."""

from __future__ import annotations

import numpy as np

from footage.appearance import DIM, colour_descriptor, colour_descriptors
from tests.footage.synthetic import background, pattern


def test_descriptors_are_unit_vectors_that_tell_looks_apart() -> None:
    one, same, other = (colour_descriptor(pattern(1)), colour_descriptor(pattern(1, (40, 100))),
                        colour_descriptor(pattern(2)))
    assert one.shape == (DIM,) and one.dtype == np.float32
    assert abs(float(np.linalg.norm(one)) - 1.0) < 1e-6
    assert float(one @ same) > 0.95 > float(one @ other)


def test_descriptors_of_boxes_in_a_frame() -> None:
    frame = background()
    frame[20:100, 30:62] = pattern(3)
    vectors = colour_descriptors(frame, np.array([[30, 20, 32, 80], [200, 100, 32, 80]]))
    assert vectors.shape == (2, DIM)
    assert float(vectors[0] @ colour_descriptor(pattern(3))) > 0.95
    assert colour_descriptors(frame, np.zeros((0, 4), dtype=np.int64)).shape == (0, DIM)
