"""Third-party re-ID networks recognised by their file names, with what their publishers document.

These networks ship without our ``metadata.json``; their input conventions, output size and
licences come from the publishers' model cards (Open Model Zoo, torchreid's model zoo).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from embedder.metadata import ModelMetadata
from embedder.runtime_model import RuntimeInput

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ThirdPartyNetwork:
    """A published network: its output size, input convention, origin and licence."""

    dim: int
    runtime: RuntimeInput
    source: str
    license: str
    input_size: tuple[int, int] = (256, 128)


_OMZ_INPUT = RuntimeInput(channels="BGR", layout="NCHW")
KNOWN_NETWORKS: dict[str, ThirdPartyNetwork] = {
    "person-reidentification-retail-0277": ThirdPartyNetwork(
        256, _OMZ_INPUT, "Intel Open Model Zoo person-reidentification-retail-0277", "Apache-2.0"),
    "person-reidentification-retail-0286": ThirdPartyNetwork(
        256, _OMZ_INPUT, "Intel Open Model Zoo person-reidentification-retail-0286", "Apache-2.0"),
    "person-reidentification-retail-0287": ThirdPartyNetwork(
        256, _OMZ_INPUT, "Intel Open Model Zoo person-reidentification-retail-0287", "Apache-2.0"),
    "person-reidentification-retail-0288": ThirdPartyNetwork(
        256, _OMZ_INPUT, "Intel Open Model Zoo person-reidentification-retail-0288", "Apache-2.0"),
    "osnet_x0_25_msmt17": ThirdPartyNetwork(
        512, RuntimeInput(channels="RGB", layout="NCHW", scale=1 / 255, mean=IMAGENET_MEAN, std=IMAGENET_STD),
        "OSNet x0.25 trained on MSMT17 (torchreid model zoo)", "MIT"),
}


def third_party_metadata(network: Path, digest: str) -> tuple[ModelMetadata, RuntimeInput]:
    """Return the metadata and input convention of the known network in file ``network``.

    Raises:
        KeyError: the file name is not a known network; the message lists them.
    """
    known = KNOWN_NETWORKS.get(network.stem)
    if known is None:
        raise KeyError(
            f"{network.name} has no {network.parent / 'metadata.json'} and is none of the known networks "
            f"({', '.join(sorted(KNOWN_NETWORKS))}); write a metadata.json with a 'runtime' entry beside it")
    metadata = ModelMetadata(
        model_id=f"{network.stem}-{digest}", input_size=known.input_size, embedding_dim=known.dim,
        preprocessing=f"{known.runtime.channels}, resized to input_size, 0..255 x {known.runtime.scale:g}, "
                      f"minus mean {known.runtime.mean}, over std {known.runtime.std}, {known.runtime.layout}",
        backbone=known.source, license=known.license, runtime=known.runtime.to_dict())
    return metadata, known.runtime
