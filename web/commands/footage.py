"""CLI commands ``reid index-footage`` and ``reid purge-footage``."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from flask.cli import with_appcontext

from embedder.training.config import AdaptConfig
from footage.settings import FootageSettings
from gallery.audit import cli_actor
from web.commands import cli_errors
from web.state import db_session, reid


@click.command("index-footage")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--camera", help="Camera name for all videos [default: each video's folder name].")
@click.option("--start", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"]),
              help="Recording start (ISO, UTC) [default: a timestamp in the file name, else its "
                   "modification time minus its duration].")
@click.option("--fps", "analysis_fps", type=click.FloatRange(0.1, 60), default=None,
              help=f"Frames analysed per second of video [default: {FootageSettings().analysis_fps}].")
@click.option("--workers", type=click.IntRange(1, 4096), default=None,
              help="Videos analysed in parallel [default: one per core; with --ray, one per CPU of the cluster].")
@click.option("--ray", "ray_address", metavar="ADDRESS", default=None,
              help="Analyse on this Ray cluster: 'auto' (the cluster this machine is a node of) or HEAD:6379; "
                   "needs the cluster extra [default: REID_RAY_ADDRESS, else local processes].")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@with_appcontext
@cli_errors
def index_footage_command(paths: tuple[Path, ...], camera: str | None, start: datetime | None,
                          analysis_fps: float | None, workers: int | None, ray_address: str | None,
                          as_json: bool) -> None:
    """Index recorded footage: find persons, track them, store sightings, link enrolled persons.

    PATHS are video files or folders searched recursively (mp4, avi, mkv, mov, ...). Videos
    already indexed with the current model are skipped, so the command can run every night on
    the whole recordings folder. Interrupted runs resume with the videos not yet stored.

    With --ray, the videos are analysed on a Ray cluster whose nodes read them at the same
    paths (a shared mount); the analyses come back here and are stored as without it.
    """
    from footage.cluster import ClusterError
    from gallery.footage_indexing import index_footage

    state = reid()
    ray_address = ray_address or state.settings.ray_address
    if ray_address and importlib.util.find_spec("ray") is None:
        raise click.ClickException('--ray needs Ray installed here and on the cluster: pip install -e ".[cluster]"')
    settings = FootageSettings(tile_every=state.settings.footage_tile_every)
    if analysis_fps is not None:
        settings = dataclasses.replace(settings, analysis_fps=analysis_fps)
    try:
        summary = index_footage(
            state.sessions, state.gallery, list(paths), detector_spec=state.settings.detector,
            detector_options=state.settings.detector_options(),
            embedder_options=state.settings.embedder_options(),
            embedder_spec=state.embedder_spec, settings=settings, camera=camera,
            start=start.replace(tzinfo=UTC) if start else None, workers=workers,
            ray_address=ray_address, actor=cli_actor())
    except (FileNotFoundError, ValueError, ClusterError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(summary.to_dict(), indent=2) if as_json else summary.describe())
    if summary.videos_failed:
        raise SystemExit(1)


@click.command("purge-footage")
@click.option("--older-than", "days", type=click.FloatRange(min=0), required=True,
              help="Delete footage recorded more than this many days ago.")
@with_appcontext
@cli_errors
def purge_footage_command(days: float) -> None:
    """Delete old footage's sightings, vectors, crops and person links, and expired stored searches (retention).

    Stored searches are kept for REID_SEARCH_RETENTION_DAYS.
    """
    gallery = reid().gallery
    cutoff = datetime.now(UTC) - timedelta(days=days)
    receipt = gallery.sightings.purge(db_session(), cutoff, actor=cli_actor())
    click.echo(f"purged footage recorded before {cutoff:%Y-%m-%d %H:%M} UTC: {json.dumps(receipt.to_dict())}")
    searches = gallery.searches.purge(db_session(), actor=cli_actor())
    click.echo(f"purged {searches} stored search(es) older than {gallery.searches.retention_days:g} day(s)")


@click.command("adapt")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Model directory to write the adapted model to.")
@click.option("--source", "source_dirs", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Labelled training data (one folder per person) kept in the mix so the model does "
                   "not forget; repeatable. Without it the model is anchored to its own footage vectors.")
@click.option("--link-threshold", type=click.FloatRange(-1.0, 1.0), default=None,
              help="Score at which two tracks (not seen together on one camera) count as one person "
                   "[default: the match threshold].")
@click.option("--steps", type=click.IntRange(1), default=AdaptConfig.steps, show_default=True,
              help="Fine-tuning batches.")
@click.option("--learning-rate", type=click.FloatRange(0.0, min_open=True), default=AdaptConfig.learning_rate,
              show_default=True, help="Adam learning rate of the fine-tuning.")
@with_appcontext
@cli_errors
def adapt_command(out_dir: Path, source_dirs: tuple[Path, ...], link_threshold: float | None, steps: int,
                  learning_rate: float) -> None:
    """Adapt the model to this site's cameras from its indexed footage, without labels.

    The tracks of the footage indexed with the current model are joined into pseudo-identities
    (tracks seen together on one camera are different persons; alike tracks otherwise join),
    the network's batch-norm statistics are re-estimated on their crops, and it is fine-tuned
    briefly on them (with --source data in the mix). Point REID_EMBEDDER at OUT to use the
    result: the gallery and new footage are embedded with it from then on (re-index footage
    to refresh old sightings). Calibrate it with `reid calibrate --model OUT`.
    """
    from embedder.training.adapt import adapt_model  # loads TensorFlow
    from gallery.adaptation import footage_training_crops

    state = reid()
    model_dir = Path(state.embedder_spec)
    if not (model_dir / "model.keras").is_file():
        raise click.UsageError(f"adapting needs a trained model directory with model.keras; the configured "
                               f"embedder is {state.embedder_spec!r}")
    threshold = link_threshold if link_threshold is not None else state.gallery.link_threshold
    crops = footage_training_crops(db_session(), state.gallery.sightings.store.root, state.embedder.model_id,
                                   threshold)
    if not crops:
        raise click.ClickException(f"no footage indexed with {state.embedder.model_id}: run "
                                   "`reid index-footage` first")
    config = AdaptConfig(steps=steps, learning_rate=learning_rate)
    try:
        metadata = adapt_model(model_dir, out_dir, crops, source_dirs, config)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {metadata.model_id} to {out_dir} "
               f"({metadata.recipe['adaptation']['pseudo_identities']} pseudo-identities, "
               f"{metadata.recipe['adaptation']['footage_crops']} crops); use it with REID_EMBEDDER={out_dir}")


def register(group: click.Group) -> None:
    """Add the footage commands to ``group``."""
    for command in (index_footage_command, purge_footage_command, adapt_command):
        group.add_command(command)
