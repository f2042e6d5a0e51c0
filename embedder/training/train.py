"""The training loop: head warm-up on a frozen backbone, then fine-tuning, resumable at any step.

Schedule (``TrainConfig`` defaults): ``head_steps`` batches train only the BN neck and the
classifier on the frozen ImageNet backbone, then the backbone trains from block
``BLOCK_NAMES[frozen_blocks]`` on, with the learning rate rising linearly from a tenth of
its peak over ``warmup_epochs``, flat until half the epochs, then falling along a cosine
to a hundredth. Checkpoints are written every epoch and every ``checkpoint_minutes``.

Measured on 2 CPU cores at 256x128, batch 64 (training images/s): backbone frozen up to
block_3 48, nothing frozen 19, up to block_1 24, up to block_6 42, up to block_10 89;
224x112 51; XLA (``jit_compile``) 2.3; mixed bfloat16 15. Hence the defaults: 256x128,
``frozen_blocks`` 4 (stem and blocks 1-3, the high-resolution ones), no XLA, float32.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from embedder.backbone.mobilenet_v2 import BLOCK_NAMES
from embedder.base import Embedder
from embedder.evaluation.evaluate import (
    EvaluationReport,
    calibrate,
    evaluate_folders,
    mean_figures,
    set_name,
    store_calibration,
)
from embedder.metadata import ModelMetadata
from embedder.registry import build_embedder
from embedder.reid_model import MODEL_FILE, KerasEmbedder
from embedder.training.checkpoint import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    LoopState,
    append_history,
    load_checkpoint,
    load_model_weights,
    read_state,
    save_checkpoint,
)
from embedder.training.config import TrainConfig
from embedder.training.data import (
    PKSampler,
    TrainingSet,
    epoch_dataset,
    load_training_set,
    zoom_view_windows,
)
from embedder.training.distillation import target_dims, teacher_targets
from embedder.training.export import export, weights_digest
from embedder.training.losses import (
    batch_hard_triplet_loss,
    center_loss,
    decorrelation_penalty,
    distillation_loss,
    smoothed_cross_entropy,
)
from embedder.training.model import ReidNet, build_reid_net, set_backbone_trainable

log = logging.getLogger(__name__)

# Fields that define the optimization; a checkpoint made with other values cannot be resumed.
RESUME_KEYS = ("data_dirs", "recipe", "input_size", "persons_per_batch", "images_per_person", "seed",
               "frozen_blocks", "scale", "max_zoom", "colour_jitter", "init_from", "teachers",
               "distill_dims", "distill_weight", "ibn")
# The value a checkpoint implies for a key it predates.
RESUME_DEFAULTS: dict[str, object] = {"max_zoom": 1.0, "colour_jitter": 0.0, "init_from": None,
                                      "teachers": [], "distill_dims": 128, "distill_weight": 2.0,
                                      "ibn": False}
RESEARCH_TERMS = ("CUHK03 and PETA's re-ID collections are licensed for research use only; their terms "
                  "(including respect for the privacy of the people shown) apply to these weights. "
                  "Retrain on your own cameras with `reid train` for other uses.")


@dataclass
class Validation:
    """One validation pass: the reports of the selection sets and of the reported-only sets."""

    selection: list[EvaluationReport]
    reported: list[EvaluationReport]
    seconds: float


def configure_threads(intra_op: int = 2, inter_op: int = 2) -> None:
    """Size TensorFlow's thread pools; once TensorFlow has run an op they stay as they are."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as exc:
        log.warning("keeping TensorFlow's thread pools as they are: %s", exc)


def learning_rate_at(config: TrainConfig, epoch: int, step: int, steps_in_epoch: int) -> float:
    """Return the learning rate at ``step`` of ``epoch``: linear warm-up, flat, cosine decay."""
    progress = epoch + step / steps_in_epoch
    peak = config.learning_rate
    if progress < config.warmup_epochs:
        return peak * (0.1 + 0.9 * progress / config.warmup_epochs)
    decay_start = config.epochs / 2
    if progress < decay_start:
        return peak
    fraction = min(1.0, (progress - decay_start) / max(config.epochs - decay_start, 1e-9))
    return peak * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * fraction)))


def compute_losses(net: ReidNet, outputs: dict[str, tf.Tensor], labels: tf.Tensor,
                   config: TrainConfig, targets: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
    """Return the named scalar losses of ``config.recipe`` for one batch's ``outputs``, with
    the distillation loss when teacher ``targets`` (B, distill_dims) are given."""
    losses = {"ce": smoothed_cross_entropy(outputs["logits"], labels)}
    if targets is not None:
        losses["distill"] = config.distill_weight * distillation_loss(outputs["distilled"], targets)
    if config.recipe == "triplet-bnneck":
        losses["triplet"] = batch_hard_triplet_loss(outputs["feature"], labels)
    else:
        unit = tf.math.l2_normalize(outputs["embedding"], axis=1)
        losses["center"] = config.center_weight * center_loss(unit, labels, net.centers)
        losses["decorrelation"] = config.decorrelation_weight * decorrelation_penalty(outputs["embedding"])
    return losses


def update_centers(net: ReidNet, outputs: dict[str, tf.Tensor], labels: tf.Tensor, rate: float) -> None:
    """Move each batch class's center a ``rate`` of the way to its mean unit embedding (Wen et al.)."""
    unit = tf.math.l2_normalize(outputs["embedding"], axis=1)
    classes, index = tf.unique(labels)
    means = tf.math.unsorted_segment_mean(unit, index, tf.shape(classes)[0])
    centers = net.centers
    assert centers is not None, "only a net with class centers (recipe dcl) updates them"
    current = tf.gather(centers, classes)
    centers.assign(tf.tensor_scatter_nd_update(centers.value, classes[:, None], current + rate * (means - current)))


def make_train_step(net: ReidNet, optimizer: keras.optimizers.Optimizer,
                    variables: list[keras.Variable], config: TrainConfig,
                    ) -> Callable[..., dict[str, tf.Tensor]]:
    """Return a compiled step: (B, H, W, 3) images, (B,) labels and teacher targets (or None)
    -> named losses and ``total``."""

    @tf.function(jit_compile=config.jit_compile)
    def step(images: tf.Tensor, labels: tf.Tensor, targets: tf.Tensor | None) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            outputs = net(images, training=True)
            losses = compute_losses(net, outputs, labels, config, targets)
            total = tf.add_n(list(losses.values()))
        optimizer.apply(tape.gradient(total, variables), variables)
        if net.centers is not None:
            update_centers(net, outputs, labels, config.center_rate)
        return {**losses, "total": total}

    return step


def research_only(config: TrainConfig) -> bool:
    """Tell whether the training data includes research-only sets (CUHK03, PETA's collections)."""
    return any(name in str(path).lower() for path in config.data_dirs for name in ("cuhk03", "multisource"))


def describe_training_data(config: TrainConfig, data: TrainingSet) -> str:
    """Say what the model was trained on, with the research-only terms where they apply."""
    text = (f"{len(data.labels)} images of {data.num_classes} persons from "
            f"{', '.join(str(path) for path in config.data_dirs)}")
    return f"{text}. {RESEARCH_TERMS}" if research_only(config) else text


def json_value(value: object) -> object:
    """Return ``value`` with tuples as lists, for comparing configs read back from JSON."""
    return list(value) if isinstance(value, tuple) else value


def stored_value(stored: dict[str, Any], key: str) -> Any:
    """Return a checkpoint config's ``key``, or what a checkpoint that predates it implies."""
    return stored.get(key, RESUME_DEFAULTS.get(key))


def changed_resume_keys(stored: dict[str, Any], config: dict[str, Any]) -> dict[str, object]:
    """Return {key: stored value} for each of ``RESUME_KEYS`` where a checkpoint's config differs."""
    values = {key: stored_value(stored, key) for key in RESUME_KEYS}
    return {key: value for key, value in values.items() if json_value(value) != json_value(config[key])}


class Trainer:
    """Runs one ``TrainConfig``: builds, resumes, trains, validates, checkpoints and exports."""

    def __init__(self, config: TrainConfig, data: TrainingSet | None = None) -> None:
        """Load the data (unless given) and build the network and its optimizer."""
        self.config = config
        self.data = data if data is not None else load_training_set(
            config.data_dirs, config.input_size, progress=config.progress)
        self.sampler = PKSampler(self.data.labels, config.persons_per_batch,
                                 config.images_per_person, config.seed)
        keras.utils.set_random_seed(config.seed)
        self.net = build_reid_net(self.data.num_classes, config.input_size, recipe=config.recipe,
                                  scale=config.scale, pretrained=config.pretrained, ibn=config.ibn,
                                  distill_dims=target_dims(self.teachers, config.distill_dims)
                                  if config.teachers else None)
        set_backbone_trainable(self.net.backbone, config.frozen_blocks)
        self.variables = list(self.net.trainable_variables)
        self.optimizer = keras.optimizers.Adam(config.learning_rate)
        self.optimizer.build(self.variables)
        self.state = LoopState(config=config.to_json())
        self.checkpoint_path = Path(config.checkpoint_dir) / CHECKPOINT_FILE
        self.history_path = Path(config.checkpoint_dir) / HISTORY_FILE
        self._last_save = time.monotonic()
        self._steps_run = 0

    @cached_property
    def teachers(self) -> list[Embedder]:
        """The teacher embedders (built, not loaded: cached vectors need no teacher pass)."""
        return [build_embedder(str(teacher), batch_size=64) for teacher in self.config.teachers]

    @cached_property
    def targets(self) -> tf.Tensor | None:
        """The teachers' (N, distill dims) targets of the training images (None without teachers),
        made on first use: exporting a finished run needs none."""
        config = self.config
        return (tf.constant(teacher_targets(
            self.teachers, self.data.items, config.distill_dims, Path(config.teacher_cache_dir),
            progress=config.progress)) if config.teachers else None)

    def restore(self, path: Path) -> None:
        """Load the checkpoint at ``path``.

        Raises:
            ValueError: the checkpoint was made with another of the ``RESUME_KEYS`` values.
        """
        changed = changed_resume_keys(read_state(path).config, self.config.to_json())
        if changed:
            raise ValueError(f"{path} was trained with other {', '.join(changed)}: {changed}; start "
                             "afresh with --no-resume or another --checkpoint-dir")
        self.state = load_checkpoint(path, self.net, self.optimizer)
        self.state.config = self.config.to_json()

    def save(self) -> None:
        """Write the checkpoint."""
        save_checkpoint(self.checkpoint_path, self.net, self.optimizer, self.state)
        self._last_save = time.monotonic()

    def batches(self, epoch: int, start_step: int = 0) -> tf.data.Dataset:
        """Return ``epoch``'s augmented training batches from ``start_step`` on (see ``epoch_dataset``)."""
        return epoch_dataset(self.data, self.sampler, epoch, start_step, max_zoom=self.config.max_zoom,
                             colour=self.config.colour_jitter)

    @property
    def _init_from_checkpoint(self) -> bool:
        """Tell whether ``init_from`` is a training checkpoint (not an exported model directory)."""
        return self.config.init_from is not None and (Path(self.config.init_from) / CHECKPOINT_FILE).is_file()

    def start_network(self) -> None:
        """Take ``init_from``'s trained layers; fit the distill head to the teachers' targets.

        From a checkpoint every layer is taken; from an exported model directory its backbone
        and BN neck (the classifier, for other persons, is then trained in the head warm-up).
        An ``ibn`` network can start from one without (see ``copy_weights_by_name``).

        The head starts as the least-squares linear map from the network's unit embeddings of
        the (unaugmented) training images to the targets.

        Raises:
            ValueError: ``init_from`` holds another network (recipe, persons or input size).
        """
        config = self.config
        if config.init_from is not None and not self._init_from_checkpoint:
            self.net.copy_exported_layers(keras.saving.load_model(
                ModelMetadata.load(Path(config.init_from)).verified(Path(config.init_from), MODEL_FILE),
                compile=False))
        elif config.init_from is not None:
            path = Path(config.init_from) / CHECKPOINT_FILE
            trained = read_state(path).config
            trained_teachers = [build_embedder(str(teacher)) for teacher in stored_value(trained, "teachers")]
            source = build_reid_net(self.data.num_classes, config.input_size, recipe=config.recipe,
                                    scale=config.scale, pretrained=False, ibn=stored_value(trained, "ibn"),
                                    distill_dims=target_dims(trained_teachers, stored_value(trained, "distill_dims"))
                                    if trained_teachers else None)
            load_model_weights(path, source)
            self.net.copy_trained_layers(source)
        if self.net.distill is not None and self.targets is not None:
            self._fit_distill_head(self.net.distill, self.targets)

    def _fit_distill_head(self, head: keras.layers.Dense, targets: tf.Tensor, batch_size: int = 64) -> None:
        """Set ``head`` to the least-squares map from the unit embeddings of the training images
        (unaugmented, with a progress bar: every image is embedded) to the (N, D) ``targets``."""
        starts = range(0, len(self.data.images), batch_size)
        chunks = []
        with self._bar(len(starts), "fitting the distill head") as bar:
            for start in starts:
                outputs = self.net(self.data.images[start:start + batch_size].astype(np.float32), training=False)
                chunks.append(tf.math.l2_normalize(outputs["embedding"], axis=1).numpy())
                bar.update()
        kernel, *_ = np.linalg.lstsq(np.concatenate(chunks).astype(np.float64), targets.numpy(), rcond=1e-6)
        head.kernel.assign(kernel.astype(np.float32))

    def train_head(self) -> None:
        """Train the BN neck and the classifier on the frozen backbone for ``head_steps`` batches.

        The batches are the first epoch's (fine-tuning then starts that epoch afresh).
        """
        config = self.config
        if config.head_steps <= 0 or self._init_from_checkpoint:
            return
        self.net.backbone.trainable = False
        head = self.net.head_variables()
        head_optimizer = keras.optimizers.Adam(config.head_learning_rate)
        head_optimizer.build(head)
        step_fn = make_train_step(self.net, head_optimizer, head, config)
        batches = self.batches(epoch=0).take(config.head_steps)
        with self._bar(min(config.head_steps, self.sampler.steps_per_epoch(0)), "head") as bar:
            for _, images, labels, indices in batches:
                losses = step_fn(images, labels, self._targets_of(indices))
                self._advance(bar, losses, len(labels), head_optimizer.learning_rate)
        set_backbone_trainable(self.net.backbone, config.frozen_blocks)

    def run(self) -> LoopState:
        """Train to ``config.epochs``, resuming when allowed and a checkpoint exists."""
        config = self.config
        if config.resume and self.checkpoint_path.is_file():
            self.restore(self.checkpoint_path)
        else:
            self.start_network()
            self.train_head()
            self.save()
        if self.state.epoch >= config.epochs:  # a finished checkpoint: nothing left to train
            if config.keep == "last":
                self.export_model(self.validate() if self._validation_due() else None)
            return self.state
        step_fn = make_train_step(self.net, self.optimizer, self.variables, config)
        while self.state.epoch < config.epochs and not self._step_budget_spent():
            self.train_epoch(step_fn)
        return self.state

    def _targets_of(self, indices: tf.Tensor) -> tf.Tensor | None:
        """Return the teacher targets of the batch's images, or None without teachers."""
        return None if self.targets is None else tf.gather(self.targets, indices)

    def _step_budget_spent(self) -> bool:
        """Tell whether this invocation has run its ``max_steps``."""
        return self.config.max_steps is not None and self._steps_run >= self.config.max_steps

    def train_epoch(self, step_fn: Callable[..., dict[str, tf.Tensor]]) -> None:
        """Run the rest of the current epoch, then validate, export and checkpoint."""
        config, state = self.config, self.state
        epoch, steps = state.epoch, self.sampler.steps_per_epoch(state.epoch)
        totals: dict[str, float] = {}
        started, seen = time.perf_counter(), 0
        with self._bar(steps, f"epoch {epoch + 1}/{config.epochs}", initial=state.step) as bar:
            for step, images, labels, indices in self.batches(epoch, state.step):
                learning_rate = learning_rate_at(config, epoch, int(step), steps)
                self.optimizer.learning_rate = learning_rate
                losses = step_fn(images, labels, self._targets_of(indices))
                for name, value in losses.items():
                    totals[name] = totals.get(name, 0.0) + float(value)
                seen += len(labels)
                self._advance(bar, losses, len(labels), learning_rate)
                state.step, state.global_step = int(step) + 1, state.global_step + 1
                self._steps_run += 1
                if state.step < steps and self._step_budget_spent():
                    self.save()
                    log.info("stopping after %d steps (max_steps)", self._steps_run)
                    return
                if time.monotonic() - self._last_save > 60 * config.checkpoint_minutes and state.step < steps:
                    self.save()
        done = max(1, seen // self.sampler.batch_size)
        record: dict[str, Any] = {
            "epoch": epoch + 1, "global_step": state.global_step,
            "learning_rate": float(self.optimizer.learning_rate.numpy()),
            "images_per_s": seen / max(time.perf_counter() - started, 1e-9),
            **{f"loss_{name}": value / done for name, value in totals.items()}}
        state.epoch, state.step = epoch + 1, 0
        reports = self.validate() if self._validation_due() else None
        improved = False
        if reports is not None:
            selected = mean_figures(reports.selection)
            record.update(rank1=selected["rank1"], rank5=selected["rank5"], mAP=selected["mAP"],
                          sets={set_name(report): {"rank1": report.rank1, "mAP": report.mAP}
                                for report in (*reports.selection, *reports.reported)},
                          validation_seconds=reports.seconds)
            score = selected["rank1"] + selected["mAP"]
            improved = state.best is None or score > state.best["rank1"] + state.best["mAP"]
            if improved:
                state.best = {"epoch": epoch + 1, "rank1": selected["rank1"], "mAP": selected["mAP"]}
        if improved or config.keep == "last" or not config.val_sets:
            self.export_model(reports)
        log.info("epoch %d: %s", epoch + 1, record)
        append_history(self.history_path, record)
        self.save()

    def _validation_due(self) -> bool:
        """Tell whether this epoch ends with a validation pass."""
        config = self.config
        if not config.val_sets:
            return False
        return self.state.epoch % config.validate_every == 0 or self.state.epoch == config.epochs

    def metadata(self) -> ModelMetadata:
        """Describe the current inference model."""
        config = self.config
        flip = "flip-" if config.flip_average else ""
        center_crops = zoom_view_windows(config.max_zoom, config.test_views)
        crop = f"crop{'+'.join(f'{side:.2f}' for side in center_crops)}-" if center_crops != (1.0,) else ""
        model = self.net.inference_model()
        dim = int(model.output_shape[-1])
        distilled = self.net.distill is not None
        return ModelMetadata(
            model_id=f"reid-mobilenetv2-{config.input_size[0]}x{config.input_size[1]}-{crop}{flip}"
                     f"{f'distill{dim}-' if distilled else ''}{weights_digest(model)}",
            input_size=(config.input_size[0], config.input_size[1]),
            embedding_dim=dim,
            projection={"method": "distillation-head", "dims": dim,
                        "fitted_on": f"the teachers' targets of {len(self.data.labels)} training images"}
            if distilled else {},
            flip_average=config.flip_average,
            center_crops=center_crops,
            training_data=describe_training_data(config, self.data),
            license="research use only (inherits the training data's terms)" if research_only(config) else "",
            recipe={**{key: value for key, value in config.to_json().items()
                        if key not in {"data_dirs", "checkpoint_dir", "out_dir", "val_sets", "report_sets",
                                       "teacher_cache_dir", "resume", "progress", "keep"}},
                    "trained_epochs": self.state.epoch, "global_step": self.state.global_step,
                    "trainable_from_block": BLOCK_NAMES[min(config.frozen_blocks, len(BLOCK_NAMES) - 1)]})

    def validate(self) -> Validation:
        """Evaluate the current inference model on the selection and the reported sets."""
        started = time.perf_counter()
        embedder = KerasEmbedder(self.net.inference_model(), self.metadata(), batch_size=64)

        def evaluate(folder: Path) -> EvaluationReport:
            return evaluate_folders(embedder, Path(folder) / "query", Path(folder) / "gallery",
                                    threshold=0.5, progress=False)

        return Validation(selection=[evaluate(folder) for folder in self.config.val_sets],
                          reported=[evaluate(folder) for folder in self.config.report_sets],
                          seconds=time.perf_counter() - started)

    def export_model(self, reports: Validation | None) -> Path:
        """Export the inference model to ``out_dir``, with calibrated threshold and figures if validated."""
        metadata = self.metadata()
        if reports is not None:
            metadata.validation.update(
                epoch=self.state.epoch,
                reported=[{"name": set_name(report), "rank1": report.rank1, "rank5": report.rank5,
                           "rank10": report.rank10, "mAP": report.mAP} for report in reports.reported])
        out_dir = export(self.net.inference_model(), Path(self.config.out_dir), metadata)
        if reports is not None:
            store_calibration(out_dir, calibrate(reports.selection, self.config.target_fmr), reports.selection)
        return out_dir

    def _bar(self, total: int, description: str, initial: int = 0) -> tqdm:
        """Return a progress bar on stderr (updated at most every 10 s when not a terminal)."""
        return tqdm(total=total, initial=initial, desc=description, unit="step", file=sys.stderr,
                    disable=not self.config.progress, dynamic_ncols=True,
                    mininterval=0.5 if sys.stderr.isatty() else 10.0)

    @staticmethod
    def _advance(bar: tqdm, losses: dict[str, tf.Tensor], images: int, learning_rate: object) -> None:
        """Step ``bar`` and show the losses, the learning rate and images/s."""
        bar.update(1)
        rate = bar.format_dict.get("rate") or 0.0
        bar.set_postfix({**{name: f"{float(value):.3f}" for name, value in losses.items()},
                         "lr": f"{float(np.asarray(learning_rate)):.2e}",
                         "img/s": f"{rate * images:.1f}"}, refresh=False)


def train(config: TrainConfig, data: TrainingSet | None = None) -> LoopState:
    """Train per ``config`` (see ``Trainer``) and return the final loop state."""
    return Trainer(config, data).run()


