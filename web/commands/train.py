"""CLI command ``reid train``: fine-tune the re-ID embedder on folders of person images."""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from typing import Any

import click

from base.images import ImageError
from embedder.training.lda import DIMS, SHRINKAGE

_folder = click.Path(file_okay=False, dir_okay=True, path_type=Path)
_existing_folder = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)


def _expand_sets(_ctx: click.Context, _param: click.Parameter, value: tuple[Path, ...]) -> tuple[Path, ...]:
    """Replace each folder of sets by its sets; refuse a folder that is neither."""
    from embedder.datasets import find_sets

    try:
        return tuple(found for folder in value for found in find_sets(folder))
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


@functools.cache
def train_defaults() -> dict[str, Any]:
    """Return ``TrainConfig``'s defaults by field name."""
    from embedder.training.config import TrainConfig

    return {field.name: field.default for field in dataclasses.fields(TrainConfig)
            if field.default is not dataclasses.MISSING}


class TrainConfigOption(click.Option):
    """An option whose default is that of the ``TrainConfig`` field of the same name.

    ``as_text`` writes the default as it would be typed.
    """

    def __init__(self, *args: Any, as_text: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("show_default", True)
        super().__init__(*args, **kwargs)
        self.as_text = as_text

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:
        assert self.name is not None
        value = train_defaults()[self.name]
        return self.as_text(value) if self.as_text else value


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _input_size(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, int]:
    """Parse HEIGHTxWIDTH into (height, width)."""
    try:
        height, width = (int(part) for part in value.lower().split("x"))
    except ValueError as error:
        raise click.BadParameter(f"give HEIGHTxWIDTH, e.g. 256x128, not {value!r}") from error
    if height < 32 or width < 32:
        raise click.BadParameter(f"height and width must be at least 32 pixels, got {value}")
    return height, width


@click.command("train")
@click.argument("data_dirs", nargs=-1, required=True, type=_folder)
@click.option("--out", "out_dir", cls=TrainConfigOption, type=_folder,
              help="Model directory to write (model.keras, metadata.json); "
                   "rewritten whenever validation improves, or every epoch without validation.")
@click.option("--checkpoint-dir", cls=TrainConfigOption, type=_folder,
              help="Working checkpoint (checkpoint.npz) and history.jsonl.")
@click.option("--epochs", cls=TrainConfigOption, type=click.IntRange(1),
              help="Total epochs, counting those already done when resuming.")
@click.option("--recipe", cls=TrainConfigOption, type=click.Choice(["triplet-bnneck", "dcl"]),
              help="triplet-bnneck: batch-hard triplet + label-smoothed identity loss on a BN neck "
                   "(Luo et al.); dcl: normalized softmax with scale, center loss and decorrelation.")
@click.option("--input-size", cls=TrainConfigOption, as_text=_size_text, callback=_input_size,
              metavar="HxW", help="Model input height x width in pixels.")
@click.option("--val-set", "val_sets", multiple=True, type=_existing_folder,
              callback=_expand_sets,
              help="A validation set (a folder holding query/ and gallery/, one folder per person in each) "
                   "or a folder of such sets; repeatable. The best epoch is chosen, and the threshold "
                   "calibrated, by the mean over these sets.")
@click.option("--report-set", "report_sets", multiple=True, type=_existing_folder,
              callback=_expand_sets,
              help="A set evaluated and reported beside the validation sets, but not used to select "
                   "(e.g. an in-domain set); repeatable.")
@click.option("--flip-average/--no-flip-average", cls=TrainConfigOption,
              help="Embed each image as the sum of the model's outputs for it and its mirror image "
                   "(twice the compute, a more accurate vector); validation and export use it.")
@click.option("--keep", cls=TrainConfigOption, type=click.Choice(["best", "last"]),
              help="Which model --out holds: the best-validated epoch's (rank-1 + mAP) or the last "
                   "epoch's; with last, a finished checkpoint run again exports its model.")
@click.option("--resume/--no-resume", cls=TrainConfigOption,
              help="Continue from the latest checkpoint if there is one.")
@click.option("--seed", cls=TrainConfigOption, type=int, help="Seed of sampling and augmentation.")
@click.option("--frozen-blocks", cls=TrainConfigOption, type=click.IntRange(0, 19),
              help="Backbone blocks (stem, block_1, ...) kept frozen while fine-tuning.")
@click.option("--max-zoom", cls=TrainConfigOption, type=click.FloatRange(1.0),
              help="Scale jitter: magnify each training image by up to this factor per axis at a "
                   "random place (1 turns it off). The exported model then embeds centre crops "
                   "that stand for the training views (see --test-views).")
@click.option("--test-views", cls=TrainConfigOption, type=click.IntRange(1),
              help="With scale jitter, embed each image as the sum of this many centre crops, "
                   "keeping 1/z of each side for z at the midpoint quantiles of U(1, Z): "
                   "0.94 and 0.84 at --max-zoom 1.25 (one view: 0.89). Each costs one pass.")
@click.option("--persons-per-batch", cls=TrainConfigOption, type=click.IntRange(2),
              help="P: persons per batch.")
@click.option("--images-per-person", cls=TrainConfigOption, type=click.IntRange(2),
              help="K: images per person per batch.")
@click.option("--learning-rate", cls=TrainConfigOption, type=click.FloatRange(0.0, min_open=True),
              help="Peak learning rate (Adam).")
@click.option("--warmup-epochs", cls=TrainConfigOption, type=click.FloatRange(0.0),
              help="Epochs over which the learning rate rises from a tenth of its peak.")
@click.option("--init-from", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Start from trained weights instead of ImageNet's, for fine-tuning: a checkpoint "
                   "directory (same persons and recipe; all layers, no head warm-up) or a model "
                   "directory such as the shipped one (its backbone and BN neck).")
@click.option("--teacher", "teachers", multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="Distil this model (a model directory, or an OpenVINO IR / ONNX network; repeat "
                   "for an ensemble): the network also learns to reproduce the teachers' joint "
                   "vectors of each training image (LDA-projected, see --distill-dims).")
@click.option("--teacher-cache", "teacher_cache_dir", cls=TrainConfigOption, type=_folder,
              help="Where each teacher's vectors of the training images are kept.")
@click.option("--colour-jitter", cls=TrainConfigOption, type=click.FloatRange(0.0, 1.0),
              help="Probability of jittering each training image's brightness, contrast and "
                   "saturation (grey and channel-shuffled images then come too): other cameras' colours.")
@click.option("--ibn/--no-ibn", cls=TrainConfigOption,
              help="Instance-batch norm (IBN-a) in the backbone's blocks 2-6: half the channels of "
                   "each expansion normalised per image, against other cameras' colour and contrast; "
                   "with --init-from a model without it, those start from its batch norm. Frozen "
                   "blocks keep their scale and shift: train them with --frozen-blocks 2 or less.")
@click.option("--distill-weight", cls=TrainConfigOption, type=click.FloatRange(0.0, min_open=True),
              help="Weight of the distillation loss (cosine distance).")
@click.option("--distill-dims", cls=TrainConfigOption, type=click.IntRange(0),
              help="Size of the teachers' LDA-projected vectors the network learns to reproduce "
                   "(0: their joined vectors, unprojected).")
@click.option("--max-steps", type=click.IntRange(0), default=None,
              help="Stop (after checkpointing) once this invocation has run this many steps.")
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True,
              help="TensorFlow intra-op threads (use the number of physical cores).")
def train_command(data_dirs: tuple[Path, ...], out_dir: Path, checkpoint_dir: Path,
                  epochs: int, recipe: str, input_size: tuple[int, int], val_sets: tuple[Path, ...],
                  report_sets: tuple[Path, ...], flip_average: bool, keep: str, resume: bool, seed: int,
                  frozen_blocks: int, max_zoom: float, test_views: int, persons_per_batch: int,
                  images_per_person: int, learning_rate: float, warmup_epochs: float,
                  init_from: Path | None, teachers: tuple[Path, ...], teacher_cache_dir: Path,
                  colour_jitter: float, ibn: bool, distill_weight: float, distill_dims: int,
                  max_steps: int | None, threads: int) -> None:
    """Fine-tune the MobileNetV2 re-ID embedder on DATA_DIR..., one folder per person in each.

    Each DATA_DIR is a source of its own persons (the same folder name in two sources is two
    persons); batches mix them.

    Trains with identity-balanced P x K batches, flips, scale jitter, pad-and-crop and random
    erasing:
    first the new head on the frozen ImageNet backbone, then the backbone too. Shows a
    progress bar, checkpoints every epoch and every 10 minutes, and resumes exactly where
    it stopped when run again. With --val-set it logs each set's rank-1 and mAP each epoch to
    history.jsonl and exports the best model by their mean (or, with --keep last, the latest),
    with a match threshold calibrated at a 0.1% false match rate on those sets' pairs.

    \b
    Example:
      D=../shared/data
      reid train $D/cuhk03/train $D/multisource/train/* --out runs/model \\
        --val-set $D/multisource/val --report-set $D/cuhk03/val \\
        --teacher ../shared/models/teachers/intel-person-reidentification-retail-0277
    """
    for data_dir in data_dirs:
        if not data_dir.is_dir():
            raise click.ClickException(f"{data_dir} is not a directory; DATA_DIR must hold one folder "
                                       "of images per person")
    from embedder.training.train import (  # loads TensorFlow
        TrainConfig,
        configure_threads,
        train,
    )

    configure_threads(threads)
    logging.basicConfig(level=logging.INFO,  # no-op under `reid`, which configures logging
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = TrainConfig(
        data_dirs=tuple(data_dirs), checkpoint_dir=checkpoint_dir, out_dir=out_dir,
        val_sets=tuple(val_sets), report_sets=tuple(report_sets), teacher_cache_dir=teacher_cache_dir,
        colour_jitter=colour_jitter, ibn=ibn,
        recipe=recipe, input_size=input_size, epochs=epochs, flip_average=flip_average,
        keep=keep, seed=seed, resume=resume,
        frozen_blocks=frozen_blocks, max_zoom=max_zoom, test_views=test_views,
        persons_per_batch=persons_per_batch,
        images_per_person=images_per_person, learning_rate=learning_rate,
        warmup_epochs=warmup_epochs, init_from=init_from, teachers=tuple(teachers),
        distill_weight=distill_weight, distill_dims=distill_dims, max_steps=max_steps)
    try:
        state = train(config)
    except (OSError, ValueError, ImageError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"trained to epoch {state.epoch} (step {state.global_step}); "
               f"best {state.best}; model in {out_dir}")


@click.command("fit-projection")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="Trained model directory (from `reid train`).")
@click.option("--out", "out_dir", type=_folder, required=True,
              help="Model directory to write the projected model to (may be --model itself).")
@click.option("--dims", type=click.IntRange(1), default=DIMS, show_default=True,
              help="Embedding size after the projection (at most persons - 1).")
@click.option("--shrinkage", type=click.FloatRange(0.0, min_open=True), default=SHRINKAGE,
              show_default=True,
              help="Added to the within-person scatter's diagonal, in units of its mean eigenvalue.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Images per embedding call.")
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True,
              help="TensorFlow intra-op threads (use the number of physical cores).")
def fit_projection_command(data_dir: Path, model_dir: Path, out_dir: Path, dims: int,
                           shrinkage: float, batch_size: int, threads: int) -> None:
    """Append a Fisher LDA projection, fitted on DATA_DIR's persons, to a trained model.

    Embeds DATA_DIR (one folder per person, normally the training data), fits a regularized
    linear discriminant analysis on those vectors and exports the model followed by the
    projection: smaller vectors that separate persons better. Only training data is used, so
    evaluation stays the standard protocol. The new model has a new id and no threshold yet:
    run `reid calibrate --model OUT` next.

    \b
    Example:
      reid fit-projection ../shared/data/cuhk03/train --model runs/reid-mobilenetv2/model \\
        --out runs/reid-mobilenetv2/model-lda
    """
    from embedder.training.projection import project_model  # loads TensorFlow
    from embedder.training.train import configure_threads

    configure_threads(threads)
    try:
        metadata = project_model(model_dir, data_dir, out_dir, dims, shrinkage, batch_size)
    except (OSError, ValueError, ImageError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"wrote {metadata.model_id} ({metadata.embedding_dim}-d) to {out_dir}; "
               f"calibrate it next: reid calibrate --model {out_dir} --query ... --gallery ...")


@click.command("export")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=_folder, required=True,
              help="Model directory to write (may be MODEL_DIR itself with --format openvino).")
@click.option("--format", "form", type=click.Choice(["openvino", "keras-json-h5"]), default="openvino",
              show_default=True,
              help="openvino: model.keras with its OpenVINO IR (model.xml + model.bin, checked against "
                   "Keras's outputs), what the service embeds with; keras-json-h5: model.json (the "
                   "architecture, for keras.models.model_from_json) and model.h5 (the weights, for "
                   "load_weights). metadata.json comes along, with each file's SHA-256.")
def export_command(model_dir: Path, out_dir: Path, form: str) -> None:
    """Write MODEL_DIR's model in another format.

    \b
    Examples:
      reid export runs/old-model --out runs/old-model          # add the OpenVINO IR
      reid export embedder/models/reid-mobilenetv2 --out /tmp/reid-h5 --format keras-json-h5
    """
    from base.integrity import IntegrityError
    from embedder.training.export import add_openvino, export_keras_json_h5  # loads TensorFlow

    writer = add_openvino if form == "openvino" else export_keras_json_h5
    try:
        written = writer(model_dir, out_dir)
    except (OSError, IntegrityError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"wrote the {form} model to {written}")


def register(group: click.Group) -> None:
    """Add ``train``, ``fit-projection`` and ``export`` to ``group``."""
    for command in (train_command, fit_projection_command, export_command):
        group.add_command(command)
