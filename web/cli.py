"""The ``reid`` command line: serve, migrate, enroll, search, delete, and the model commands."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click
from flask.cli import ScriptInfo, with_appcontext

from gallery.audit import cli_actor
from gallery.service import SearchResponse
from gallery.uploads import Upload, check_image
from gallery.vector_index import unusable_index_paths
from web import create_app
from web.commands import access as access_commands
from web.commands import cli_errors
from web.commands import evaluate as evaluate_commands
from web.commands import footage as footage_commands
from web.commands import train as train_commands
from web.settings import Settings, SettingsError, load_settings
from web.state import db_session, reid

IMAGE_ARG = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the database, index and images live [env REID_DATA_DIR; "
                   "default ~/.local/share/reid].")
@click.version_option(package_name="reid")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None) -> None:
    """Person re-identification: enroll known persons, search by CCTV stills.

    Every setting can also come from a REID_* environment variable (see the README); they are
    checked before any command runs.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings({"DATA_DIR": data_dir} if data_dir else None)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error
    ctx.obj = ScriptInfo(create_app=lambda: create_app(settings=settings))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (gunicorn); each loads the models and keeps its own index copy.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Threads per worker process.")
@click.option("--dev", is_flag=True, help="Use Flask's development server (one process, debugger off).")
@with_appcontext
@cli_errors
def serve(host: str, port: int, workers: int, threads: int, dev: bool) -> None:
    """Serve the web pages and the JSON API (in open mode, on this machine only)."""
    from flask import current_app

    open_mode = access_commands.refuse_open_network(host)
    state = reid()
    problems = unusable_index_paths(state.data_dir / "index")
    if problems:
        raise click.ClickException("; ".join(problems))
    if not dev:  # gunicorn: the workers build the app themselves; nothing heavy is forked
        from web.server import serve as serve_gunicorn

        state.check_database()
        db_session().close()  # the master keeps no connection: workers must not share one
        state.engine.dispose()
        click.echo(f"data in {state.data_dir} · serving on http://{host}:{port}/ with "
                   f"{workers} worker processes × {threads} threads", err=True)
        serve_gunicorn(state.data_dir, host=host, port=port, workers=workers, threads=threads,
                       open_mode=open_mode)
        return
    gallery = state.gallery
    state.warm()
    indexed = len(gallery.index(db_session()))
    click.echo(f"model {gallery.embedder.model_id} · {indexed} vectors indexed · "
               f"threshold {state.default_threshold():.3f} · data in {state.data_dir}", err=True)
    click.echo(f"serving on http://{host}:{port}/", err=True)
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # Flask types the proxy as the app
    app.run(host=host, port=port, use_reloader=False, threaded=True)


@cli.group()
def db() -> None:
    """Create or migrate the database."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create the database or migrate it to the newest schema."""
    from gallery.schema import upgrade

    state = reid()
    state.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(state.database_url, revision)
    click.echo(f"database at {state.engine.url.render_as_string(hide_password=True)} "
               f"is at revision {revision}")


@db.command("current")
@with_appcontext
def db_current() -> None:
    """Print the database's schema revision."""
    from gallery.schema import current_revision

    click.echo(current_revision(reid().engine) or "none (run `reid db upgrade`)")


def _uploads(paths: tuple[Path, ...]) -> list[Upload]:
    return [Upload(data=path.read_bytes(), filename=path.name) for path in paths]


@cli.command()
@click.option("--name", help="The person's name (creates a new person).")
@click.option("--person-id", type=int, help="Add the images to this existing person instead.")
@click.option("--notes", default="", help="Free-text notes about the person.")
@click.option("--force", is_flag=True,
              help="Enroll each image whole, without checking that it holds exactly one person "
                   "(for crops too tight for the detector).")
@click.option("--keep-original", is_flag=True,
              help="Keep each image beside the person's crop taken from it, for audit.")
@click.argument("images", nargs=-1, required=True, type=IMAGE_ARG)
@with_appcontext
@cli_errors
def enroll(name: str | None, person_id: int | None, notes: str, force: bool, keep_original: bool,
           images: tuple[Path, ...]) -> None:
    """Enroll a person from one or more IMAGES, each showing exactly one person.

    The detector's box around the one person in each image is enrolled; an image with nobody
    or several persons is refused (nothing is stored) unless --force is given.
    """
    gallery = reid().gallery
    if (name is None) == (person_id is None):
        raise click.UsageError("give exactly one of --name (new person) or --person-id (existing)")
    if person_id is None:
        person = gallery.enroll(db_session(), name, _uploads(images), notes=notes, source="cli",
                                actor=cli_actor(), force=force, keep_original=keep_original)
        added = person.images
    else:
        added = gallery.add_images(db_session(), person_id, _uploads(images), source="cli",
                                   actor=cli_actor(), force=force, keep_original=keep_original)
        person = gallery.get_person(db_session(), person_id)
    click.echo(f"person {person.id} ({person.name}): added image(s) {', '.join(str(i.id) for i in added)}")
    for image in added:
        taken = (f"box {image.box} (detector {image.detection_score:.2f})" if image.box is not None
                 else "the whole image")
        click.echo(f"  image {image.id} ({image.original_name}): {taken}")
    others = gallery.same_name(db_session(), person.name, other_than=person.id)
    if person_id is None and others:
        click.echo(f"warning: another person is already named {person.name}: person "
                   f"{', '.join(str(i) for i in others)}", err=True)


@cli.command()
@click.argument("image", type=IMAGE_ARG)
@click.option("--top-k", type=int, default=None,
              help=f"Persons to list per query [default: REID_TOP_K, else {Settings.model_fields['top_k'].default}].")
@click.option("--threshold", type=float, default=None,
              help="Match threshold (cosine similarity) [default: the model's calibrated one].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
@cli_errors
def search(image: Path, top_k: int | None, threshold: float | None, as_json: bool) -> None:
    """Search the gallery for the person(s) in IMAGE (a CCTV still or a crop)."""
    state = reid()
    checked = check_image(Upload(image.read_bytes(), image.name), **state.settings.image_limits())
    response = state.gallery.search(
        db_session(), checked.image, top_k=top_k if top_k is not None else state.settings.top_k,
        threshold=threshold if threshold is not None else state.default_threshold(),
        actor=cli_actor(), query_sha256=checked.sha256)
    click.echo(json.dumps(response.to_dict(), indent=2) if as_json else _format_search(response))


def _format_search(response: SearchResponse) -> str:
    lines = [f"threshold {response.threshold:.3f} · model {response.model_id} · "
             f"{response.detected} person(s) detected by {response.detector_id}"]
    if response.detected == 0:
        lines.append("nobody detected: the whole image was searched as one person crop")
    for n, result in enumerate(response.results, 1):
        where = (f"box {result.bbox} (detector {result.detection_score:.2f})" if result.bbox
                 else "whole image (nobody detected)")
        margin = f", margin {result.margin:.3f}" if result.margin is not None else ""
        lines.append(f"query {n}: {where}{margin}")
        lines += [f"  {rank}. {m.name} (person {m.person_id})  {m.score:.3f}  "
                  f"{'MATCH' if m.match else 'no match'}" for rank, m in enumerate(result.matches, 1)]
        if not result.matches:
            lines.append("  (the gallery is empty)")
    return "\n".join(lines)


@cli.command()
@click.argument("person_id", type=int)
@with_appcontext
@cli_errors
def delete(person_id: int) -> None:
    """Delete a person with all their images, files and vectors."""
    receipt = reid().gallery.delete_person(db_session(), person_id, actor=cli_actor())
    click.echo(f"deleted person {person_id}: {json.dumps(receipt.to_dict())}")


@cli.command("delete-image")
@click.argument("image_id", type=int)
@with_appcontext
@cli_errors
def delete_image(image_id: int) -> None:
    """Delete one enrolled image with its file and vector."""
    receipt = reid().gallery.delete_image(db_session(), image_id, actor=cli_actor())
    click.echo(f"deleted image {image_id}: {json.dumps(receipt.to_dict())}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
@cli_errors
def persons(as_json: bool) -> None:
    """List the enrolled persons."""
    rows = reid().gallery.list_persons(db_session())
    if as_json:
        click.echo(json.dumps([{"id": p.id, "name": p.name, "images": n} for p, n, _ in rows], indent=2))
        return
    for person, n, _ in rows:
        click.echo(f"{person.id:>6}  {person.name}  ({n} image{'s' if n != 1 else ''})")
    if not rows:
        click.echo("nobody is enrolled yet")


evaluate_commands.register(cli)
train_commands.register(cli)
footage_commands.register(cli)
access_commands.register(cli)


def main() -> None:
    """Run the ``reid`` command line."""
    cli(prog_name="reid")
