"""OpenVINO/ONNX embedders: a generated network against numpy, the shared teachers against their references."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from embedder.metadata import ModelMetadata
from embedder.registry import SHIPPED_MODEL_DIR, build_embedder
from embedder.runtime_model import RuntimeEmbedder, RuntimeInput, load_runtime_embedder
from tests.embedder.teacher_reference import (
    REFERENCE_FILE,
    TEACHERS,
    fixed_person_image,
)

TEACHERS_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "teachers"
WEIGHTS = np.array([[1.0, 0.0, 2.0, -1.0], [0.0, 1.0, 0.5, 1.0], [0.5, -1.0, 0.0, 1.0]], np.float32)
RUNTIME = RuntimeInput(channels="BGR", layout="NCHW", scale=1 / 255, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))


def write_pooling_network(folder: Path, runtime: RuntimeInput = RUNTIME) -> Path:
    """Save an IR that averages each input channel over the image and maps the 3 means by WEIGHTS."""
    import openvino as ov
    import openvino.opset13 as ops

    folder.mkdir(parents=True)
    shape = [1, 3, 16, 8] if runtime.layout == "NCHW" else [1, 16, 8, 3]
    pixels = ops.parameter(shape, ov.Type.f32, name="pixels")
    means = ops.reduce_mean(pixels, [2, 3] if runtime.layout == "NCHW" else [1, 2], keep_dims=False)
    output = ops.matmul(means, ops.constant(WEIGHTS), False, False)
    ov.save_model(ov.Model([output], [pixels], "pooling"), folder / "pooling.xml")
    ModelMetadata(model_id="pooling-test", input_size=(16, 8), embedding_dim=4,
                  runtime=runtime.to_dict()).save(folder)
    return folder


def expected_vector(image: np.ndarray, runtime: RuntimeInput = RUNTIME) -> np.ndarray:
    """Compute the pooling network's unit output with numpy alone."""
    resized = cv2.resize(image, (8, 16), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    channels = resized if runtime.channels == "BGR" else resized[..., ::-1]
    means = ((channels * runtime.scale - runtime.mean) / runtime.std).mean(axis=(0, 1))
    vector = means @ WEIGHTS
    return vector / np.linalg.norm(vector)


@pytest.fixture
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, size=(40 + 9 * n, 20 + 4 * n, 3)).astype(np.uint8) for n in range(5)]


@pytest.mark.parametrize("runtime", [RUNTIME, RuntimeInput()], ids=["BGR-NCHW-normalised", "RGB-NHWC-raw"])
def test_a_generated_network_embeds_as_numpy_computes(tmp_path: Path, images: list[np.ndarray],
                                                      runtime: RuntimeInput) -> None:
    embedder = build_embedder(str(write_pooling_network(tmp_path / "model", runtime)), batch_size=2,
                              precision="f32")
    assert isinstance(embedder, RuntimeEmbedder) and embedder.dim == 4 and embedder.model_id == "pooling-test"
    vectors = embedder.embed(images)  # batches of 2: the network's batch size of 1 was made dynamic
    assert vectors.shape == (5, 4) and vectors.dtype == np.float32
    for image, vector in zip(images, vectors, strict=True):
        np.testing.assert_allclose(vector, expected_vector(image, runtime), atol=1e-5)


def test_views_and_flip_sum_the_networks_outputs(tmp_path: Path, images: list[np.ndarray]) -> None:
    folder = write_pooling_network(tmp_path / "model")
    metadata = ModelMetadata.load(folder)
    metadata.center_crops, metadata.flip_average = (1.0, 0.5), True
    metadata.save(folder)
    vectors = load_runtime_embedder(folder, precision="f32").embed(images)
    for image, vector in zip(images, vectors, strict=True):
        rows, cols = image.shape[:2]
        centre = image[round(rows / 4):rows - round(rows / 4), round(cols / 4):cols - round(cols / 4)]
        # a channel mean is unchanged by mirroring, so flip doubles each view's output
        whole, half = (expected_vector(view) * np.linalg.norm(raw_output(view)) for view in (image, centre))
        summed = whole + half
        np.testing.assert_allclose(vector, summed / np.linalg.norm(summed), atol=1e-4)


def raw_output(image: np.ndarray) -> np.ndarray:
    """The pooling network's output before normalisation."""
    resized = cv2.resize(image, (8, 16), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    return ((resized * RUNTIME.scale - RUNTIME.mean) / RUNTIME.std).mean(axis=(0, 1)) @ WEIGHTS


def test_bad_runtime_models_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="channels must be RGB or BGR"):
        RuntimeInput(channels="RGBA")
    with pytest.raises(ValueError, match="precision must be one of auto, f32, bf16"):
        load_runtime_embedder(write_pooling_network(tmp_path / "model"), precision="int4")
    with pytest.raises(ValueError, match="precision must be one of auto, f32, bf16"):
        build_embedder("imagenet-mobilenetv2", precision="int4")  # checked whether the model uses it or not
    (tmp_path / "empty").mkdir()
    with pytest.raises(KeyError, match="unknown embedder"):
        build_embedder(str(tmp_path / "empty"))
    unknown = write_pooling_network(tmp_path / "unknown")
    (unknown / "metadata.json").unlink()
    with pytest.raises(KeyError, match="none of the known networks"):
        build_embedder(str(unknown))


@pytest.mark.skipif(not TEACHERS_ROOT.is_dir(), reason="../shared/models/teachers is absent")
@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_shared_teachers_match_their_reference_runtimes(name: str) -> None:
    recorded = json.loads(REFERENCE_FILE.read_text())[name]
    embedder = build_embedder(str(TEACHERS_ROOT / TEACHERS[name]), precision="f32")
    vector = embedder.embed([fixed_person_image()])[0]
    assert embedder.dim == recorded["dim"] and embedder.metadata.license in ("Apache-2.0", "MIT")
    np.testing.assert_allclose(vector[:len(recorded["head"])], recorded["head"], atol=2e-3)


def test_the_shipped_model_in_bf16_agrees_with_f32(images: list[np.ndarray]) -> None:
    crops = [fixed_person_image(), *images]
    exact = build_embedder(str(SHIPPED_MODEL_DIR), precision="f32").embed(crops)
    fast = build_embedder(str(SHIPPED_MODEL_DIR), precision="bf16").embed(crops)
    assert np.min(np.sum(exact * fast, axis=1)) >= 0.995  # measured: 0.9987 to 0.9999


def test_threads_embedding_at_once_get_their_own_vectors(images: list[np.ndarray]) -> None:
    embedder = build_embedder(str(SHIPPED_MODEL_DIR), batch_size=64, precision="f32")
    batches = [[images[i % len(images)]] * (1 + 3 * i) for i in range(8)]  # 1 to 22 crops, 4 views each
    alone = [embedder.embed(batch) for batch in batches]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(embedder.embed, batches))
    for one, other in zip(alone, together, strict=True):
        np.testing.assert_allclose(other, one, atol=1e-5)
