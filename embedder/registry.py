"""Build embedders by name or by model directory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from base.inference import check_precision
from base.plugins import factory_at
from embedder.base import Embedder
from embedder.runtime_model import IR_FILE, NETWORK_SUFFIXES, load_runtime_embedder

log = logging.getLogger(__name__)

SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "models" / "reid-mobilenetv2"


def _imagenet(**kwargs: Any) -> Embedder:
    from embedder.imagenet import ImageNetEmbedder  # TensorFlow loads only when needed

    return ImageNetEmbedder(**kwargs)


def _reid_model(model_dir: Path, precision: str, **kwargs: Any) -> Embedder:
    """Embed with the directory's OpenVINO IR in ``precision``, or with TensorFlow (slower, logged) when it has none."""
    if (model_dir / IR_FILE).is_file():
        return load_runtime_embedder(model_dir / IR_FILE, precision=precision, **kwargs)
    from embedder.reid_model import ReidEmbedder

    log.warning("%s has no OpenVINO IR (%s): embedding with TensorFlow, slower; add it with "
                "`reid export %s --format openvino --out %s`", model_dir, IR_FILE, model_dir, model_dir)
    return ReidEmbedder(model_dir, **kwargs)


_FACTORIES: dict[str, Callable[..., Embedder]] = {"imagenet-mobilenetv2": _imagenet}


def register_embedder(name: str, factory: Callable[..., Embedder]) -> None:
    """Make ``build_embedder(name)`` call ``factory``."""
    _FACTORIES[name] = factory


def known_embedders() -> list[str]:
    """Return the registered embedder names."""
    return sorted(_FACTORIES)


def default_embedder_spec() -> str:
    """Return the shipped re-ID model's directory, or the ImageNet baseline if none is shipped."""
    if (SHIPPED_MODEL_DIR / "model.keras").is_file():
        return str(SHIPPED_MODEL_DIR)
    return "imagenet-mobilenetv2"


def build_embedder(spec: str, *, precision: str = "auto", **kwargs: Any) -> Embedder:
    """Build the embedder named ``spec``: a registered name, a model directory, or ``module:factory``.

    Args:
        spec: the name, directory or factory path.
        precision: OpenVINO's precision for an IR or ONNX network, ``auto``, ``f32`` or ``bf16``
            (``base.inference``); TensorFlow models and plug-ins compute as they do.
        **kwargs: passed to the embedder's constructor or factory (``batch_size``, ``threads``).

    Raises:
        KeyError: ``spec`` is none of these; the message lists the names.
        ValueError: an unknown ``precision``, or a constructor's own refusal.
    """
    check_precision(precision)
    if spec in _FACTORIES:
        return _FACTORIES[spec](**kwargs)
    factory = factory_at(spec)
    if factory is not None:
        return factory(**kwargs)
    path = Path(spec)
    if (path / "model.keras").is_file():
        return _reid_model(path, precision, **kwargs)
    if (path.suffix in NETWORK_SUFFIXES and path.is_file()) or (path.is_dir() and any(
            child.suffix in NETWORK_SUFFIXES for child in path.iterdir())):
        return load_runtime_embedder(path, precision=precision, **kwargs)
    raise KeyError(
        f"unknown embedder {spec!r}: give one of {', '.join(known_embedders())}, a model directory "
        "holding model.keras and metadata.json, or an OpenVINO IR / ONNX network (file or directory)")
