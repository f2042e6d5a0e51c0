"""Record torchvision MobileNetV2 reference outputs for the Keras port's tests.

Needs torch; run with a venv that has torch 2.x, numpy and scikit-image (not this project's)::

    python3 -m venv /tmp/torchref && /tmp/torchref/bin/pip install torch numpy scikit-image
    /tmp/torchref/bin/python tests/embedder/record_mobilenet_v2_reference.py --weights PATH.pth

torchvision is not needed: its MobileNetV2 is copied below in plain torch, with the same module
tree so that ``load_state_dict(strict=True)`` accepts torchvision's file unchanged. The photographs
are resized with scikit-image exactly as ``tests/embedder/conftest.py`` does; the SHA-256 of each
resized uint8 image is saved so the tests can prove both sides saw the same pixels.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import skimage.data
import skimage.transform
import torch
from torch import nn

OUTPUT = Path(__file__).resolve().parent / "data" / "mobilenet_v2_reference.npz"
PHOTOS = ("coffee", "chelsea")
SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """Round ``v`` to a multiple of ``divisor`` without going below 90 % of it (torchvision)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU(nn.Sequential):
    """Conv2d (padding (k-1)//2, no bias), BatchNorm2d, ReLU6, as torchvision's ConvBNReLU."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_planes),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """torchvision's InvertedResidual: expand 1x1, depthwise 3x3, linear project 1x1, residual."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        assert stride in (1, 2)
        hidden_dim = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(inp, hidden_dim, kernel_size=1))
        layers.extend([
            ConvBNReLU(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ])
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2; ``forward_features`` returns the pooled 1280-d vector."""

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, round_nearest: int = 8) -> None:
        super().__init__()
        input_channel = 32
        last_channel = 1280
        inverted_residual_setting = [
            # t, c, n, s
            [1, 16, 1, 1],
            [6, 24, 2, 2],
            [6, 32, 3, 2],
            [6, 64, 4, 2],
            [6, 96, 3, 1],
            [6, 160, 3, 2],
            [6, 320, 1, 1],
        ]
        input_channel = _make_divisible(input_channel * width_mult, round_nearest)
        self.last_channel = _make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [ConvBNReLU(3, input_channel, stride=2)]
        for t, c, n, s in inverted_residual_setting:
            output_channel = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(InvertedResidual(input_channel, output_channel, stride, expand_ratio=t))
                input_channel = output_channel
        features.append(ConvBNReLU(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channel, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the globally average-pooled (N, 1280) features."""
        x = self.features(x)
        return nn.functional.adaptive_avg_pool2d(x, 1).reshape(x.shape[0], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the (N, 1000) ImageNet logits."""
        return self.classifier(self.forward_features(x))


def load_photo(name: str) -> np.ndarray:
    """Return scikit-image's photograph ``name`` resized to SIZE x SIZE, RGB uint8 (as conftest.py)."""
    image = getattr(skimage.data, name)()
    resized = skimage.transform.resize(image, (SIZE, SIZE), order=1, anti_aliasing=True,
                                       preserve_range=True)
    return np.clip(np.round(resized), 0, 255).astype(np.uint8)


def main() -> None:
    """Run the reference model on the photographs and save the .npz fixture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True, help="mobilenet_v2-b0353104.pth")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    model = MobileNetV2()
    state = torch.load(args.weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()

    photos = np.stack([load_photo(name) for name in PHOTOS])
    x = torch.from_numpy(photos).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model.classifier(features)
    top5 = torch.topk(logits, 5, dim=1).indices

    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.output,
        names=np.array(PHOTOS),
        input_sha256=np.array([hashlib.sha256(photo.tobytes()).hexdigest() for photo in photos]),
        features=features.numpy().astype(np.float32),
        logits=logits.numpy().astype(np.float32),
        top5=top5.numpy().astype(np.int64),
        torch_version=np.array(torch.__version__),
    )
    for name, classes in zip(PHOTOS, top5.tolist()):
        print(f"{name}: top-5 ImageNet classes {classes}")
    print(f"saved {args.output} ({args.output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
