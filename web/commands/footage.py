"""CLI commands ``reid index-footage`` and ``reid purge-footage``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from flask.cli import with_appcontext

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
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Videos analysed in parallel [default: one per core].")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@with_appcontext
@cli_errors
def index_footage_command(paths: tuple[Path, ...], camera: str | None, start: datetime | None,
                          analysis_fps: float | None, workers: int | None, as_json: bool) -> None:
    """Index recorded footage: find persons, track them, store sightings, link enrolled persons.

    PATHS are video files or folders searched recursively (mp4, avi, mkv, mov, ...). Videos
    already indexed with the current model are skipped, so the command can run every night on
    the whole recordings folder. Interrupted runs resume with the videos not yet stored.
    """
    from gallery.footage_indexing import index_footage

    state = reid()
    settings = FootageSettings() if analysis_fps is None else FootageSettings(analysis_fps=analysis_fps)
    try:
        summary = index_footage(
            state.sessions, state.gallery, list(paths), detector_spec=state.settings.detector,
            embedder_spec=state.embedder_spec, settings=settings, camera=camera,
            start=start.replace(tzinfo=UTC) if start else None, workers=workers,
            actor=cli_actor())
    except (FileNotFoundError, ValueError) as exc:
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
    """Delete old footage's sightings, vectors, crops and person links (retention)."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    receipt = reid().gallery.sightings.purge(db_session(), cutoff, actor=cli_actor())
    click.echo(f"purged footage recorded before {cutoff:%Y-%m-%d %H:%M} UTC: {json.dumps(receipt.to_dict())}")


def register(group: click.Group) -> None:
    """Add the footage commands to ``group``."""
    group.add_command(index_footage_command)
    group.add_command(purge_footage_command)
