"""The settings of one training run, as plain values (importing this loads no TensorFlow)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class TrainConfig:
    """Everything one training run needs, as plain values.

    ``data_dirs`` are folders of per-person folders, each a source of its own persons. Validation
    evaluates each of ``val_sets`` and ``report_sets`` (folders holding ``query/`` and ``gallery/``);
    the model is selected, and its threshold calibrated, on ``val_sets`` alone (the mean over
    the sets, each counting once), while ``report_sets`` are only reported beside them.
    ``keep`` says which model ``out_dir`` holds: ``"best"``, the epoch with the best mean
    validation rank-1 + mAP, or ``"last"``, the latest epoch (run again on a finished checkpoint, it
    exports that one). ``init_from`` starts the network from trained weights instead of
    ImageNet's: a checkpoint directory of the same recipe and persons (all layers, no head
    warm-up), or an exported model directory (its backbone and BN neck).
    ``teachers`` (model directories or OpenVINO/ONNX networks) add a distillation loss,
    ``distill_weight`` times the cosine distance between the network's ``distill`` head and the
    teachers' ``distill_dims``-d targets (0: their joined vectors; see ``distillation``), whose
    vectors are cached in ``teacher_cache_dir``. ``colour_jitter`` is the probability of each
    training image's colour jitter (``jitter_colour``), 0 for none. ``ibn`` puts instance-batch
    norm (IBN-a) into the backbone's blocks 2-6 (``IBN_BLOCKS``), for other cameras' appearance;
    a frozen block is frozen whole, its instance part still normalising per image, so that
    its scale and shift train only with ``frozen_blocks`` at most 2 (stem and block 1).
    ``test_views``: how many centre crops standing for the training zoom the exported model
    embeds each image in (``zoom_view_windows``).
    """

    data_dirs: tuple[Path, ...]
    checkpoint_dir: Path = Path("runs/reid-mobilenetv2")
    out_dir: Path = Path("runs/reid-mobilenetv2/model")
    val_sets: tuple[Path, ...] = ()
    report_sets: tuple[Path, ...] = ()
    teacher_cache_dir: Path = Path("runs/teacher-vectors")
    recipe: str = "triplet-bnneck"
    input_size: tuple[int, int] = (256, 128)
    epochs: int = 60
    persons_per_batch: int = 16
    images_per_person: int = 4
    learning_rate: float = 3.5e-4
    warmup_epochs: float = 5.0
    head_steps: int = 100
    head_learning_rate: float = 3.5e-3
    frozen_blocks: int = 4
    max_zoom: float = 1.25
    colour_jitter: float = 0.0
    ibn: bool = False
    scale: float = 16.0
    center_weight: float = 0.5
    center_rate: float = 0.5
    decorrelation_weight: float = 0.1
    jit_compile: bool = False
    checkpoint_minutes: float = 10.0
    validate_every: int = 1
    keep: str = "best"
    target_fmr: float = 1e-3
    flip_average: bool = True
    test_views: int = 2
    seed: int = 0
    init_from: Path | None = None
    teachers: tuple[Path, ...] = ()
    distill_dims: int = 128
    distill_weight: float = 2.0
    max_steps: int | None = None
    pretrained: bool = True
    resume: bool = True
    progress: bool = True

    def to_json(self) -> dict[str, Any]:
        """Return the config as JSON-ready values."""
        def plain(value: object) -> object:
            if isinstance(value, tuple) and all(isinstance(item, Path) for item in value):
                return [str(item) for item in value]  # data folders, sets, teachers; empty ones too
            return str(value) if isinstance(value, Path) else value
        return {key: plain(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class AdaptConfig:
    """The settings of one adaptation: ``steps`` fine-tuning batches of ``persons`` x ``per_person``."""

    steps: int = 200
    learning_rate: float = 1e-5
    persons: int = 16
    per_person: int = 4
    bn_batches: int = 40
    anchor_weight: float = 1.0
    frozen_blocks: int = 4
    seed: int = 0
