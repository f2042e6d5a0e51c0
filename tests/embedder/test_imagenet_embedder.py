"""Tests for the ImageNet MobileNetV2 baseline embedder."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from embedder.imagenet import ImageNetEmbedder


@pytest.fixture(scope="module")
def embedder() -> ImageNetEmbedder:
    """Load the embedder once; batches of 4 so that a few images span several batches."""
    embedder = ImageNetEmbedder(batch_size=4)
    embedder.load()
    return embedder


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    """Return seeded random BGR crops of assorted sizes, one already 256x128."""
    rng = np.random.default_rng(0)
    sizes = [(256, 128), (300, 100), (64, 32), (180, 90), (128, 256), (17, 11)]
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


def test_identity() -> None:
    embedder = ImageNetEmbedder()
    assert embedder.model_id == "imagenet-mobilenetv2-256x128"
    assert embedder.dim == 1280
    assert embedder.input_size == (256, 128)


def test_embeds_to_unit_float32_rows(embedder: ImageNetEmbedder, crops: list[np.ndarray]) -> None:
    vectors = embedder.embed(crops)
    assert vectors.shape == (len(crops), 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_is_deterministic_and_independent_of_batching(embedder: ImageNetEmbedder,
                                                      crops: list[np.ndarray]) -> None:
    vectors = embedder.embed(crops)
    np.testing.assert_array_equal(embedder.embed(crops), vectors)
    one_by_one = np.concatenate([embedder.embed([crop]) for crop in crops])
    np.testing.assert_allclose(one_by_one, vectors, atol=1e-5)


def test_a_crop_is_nearer_its_own_resized_copy_than_another_photo(embedder: ImageNetEmbedder) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    coffee = cv2.cvtColor(skimage_data.coffee(), cv2.COLOR_RGB2BGR)
    cat = cv2.cvtColor(skimage_data.chelsea(), cv2.COLOR_RGB2BGR)
    smaller = cv2.resize(coffee, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    a, b, c = embedder.embed([coffee, smaller, cat])
    assert a @ b > a @ c + 0.2


def test_no_images_give_an_empty_array() -> None:
    assert ImageNetEmbedder().embed([]).shape == (0, 1280)


@pytest.mark.parametrize("image", [
    np.zeros((32, 16, 3), dtype=np.float32),
    np.zeros((32, 16), dtype=np.uint8),
    np.zeros((32, 16, 4), dtype=np.uint8),
    [[0, 0, 0]],
], ids=["float", "grey", "four channels", "list"])
def test_refuses_what_is_not_a_bgr_image(image: object) -> None:
    with pytest.raises(TypeError, match="uint8 BGR"):
        ImageNetEmbedder().embed([image])


def test_refuses_a_batch_size_below_one() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        ImageNetEmbedder(batch_size=0)
