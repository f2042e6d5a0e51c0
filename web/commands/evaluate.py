"""CLI commands ``reid evaluate``, ``reid calibrate`` and ``reid verify``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from base.images import ImageError, read_image
from embedder import registry
from embedder.base import FALLBACK_THRESHOLD, Embedder
from embedder.datasets import find_sets
from embedder.evaluation.evaluate import (
    EvaluationReport,
    calibrate,
    evaluate_folders,
    mean_figures,
    reranked_figures,
    set_name,
    store_calibration,
    with_threshold,
)
from embedder.evaluation.rerank import K1, K2, LAMBDA

_folder = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)
_image = click.Path(exists=True, file_okay=True, dir_okay=False, path_type=Path)
_query_option = click.option("--query", "query_dir", type=_folder,
                             help="Folder of <person>/<image> query images (with --gallery).")
_gallery_option = click.option("--gallery", "gallery_dir", type=_folder,
                               help="Folder of <person>/<image> gallery images (with --query).")
_set_option = click.option(
    "--set", "set_dirs", multiple=True, type=_folder, metavar="DIR",
    help="Instead of --query/--gallery: a set (a folder holding query/ and gallery/) or a folder "
         "of sets; repeatable. Each set counts once in the mean.")
_model_option = click.option(
    "--model", "model_spec", metavar="NAME|DIR",
    help="Registered embedder name or model directory (default: the shipped model).")


def _build_embedder(spec: str | None) -> Embedder:
    """Build and load the embedder for ``spec`` (the default when None), or fail with a message."""
    spec = spec or registry.default_embedder_spec()
    try:
        embedder = registry.build_embedder(spec)
        embedder.load()
    except KeyError as error:
        raise click.UsageError(str(error.args[0])) from error
    except (OSError, ValueError) as error:
        raise click.ClickException(f"cannot load model {spec!r}: {error}") from error
    return embedder


def _splits(query_dir: Path | None, gallery_dir: Path | None,
            set_dirs: tuple[Path, ...]) -> list[tuple[Path, Path]]:
    """Return the (query, gallery) folders to evaluate: the given pair, or each set's."""
    if set_dirs:
        if query_dir is not None or gallery_dir is not None:
            raise click.UsageError("give --set, or --query with --gallery, not both")
        try:
            return [(folder / "query", folder / "gallery") for root in set_dirs for folder in find_sets(root)]
        except ValueError as error:
            raise click.UsageError(str(error)) from error
    if query_dir is None or gallery_dir is None:
        raise click.UsageError("give --query and --gallery, or one or more --set")
    return [(query_dir, gallery_dir)]


def _evaluate(embedder: Embedder, splits: list[tuple[Path, Path]], threshold: float,
              batch_size: int) -> list[EvaluationReport]:
    """Run ``evaluate_folders`` on each split, turning bad input into a ClickException."""
    try:
        return [evaluate_folders(embedder, query_dir, gallery_dir, threshold, batch_size=batch_size)
                for query_dir, gallery_dir in splits]
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from error


def _format_sets(reports: list[EvaluationReport]) -> str:
    """Render one line per set and the mean, as an aligned table."""
    lines = [f"{'set':<16}{'queries':>8}{'rank-1':>9}{'rank-5':>9}{'rank-10':>9}{'mAP':>9}"]
    for report in reports:
        lines.append(f"{set_name(report):<16}{report.counts['valid_queries']:>8}{report.rank1:>9.2%}"
                     f"{report.rank5:>9.2%}{report.rank10:>9.2%}{report.mAP:>9.2%}")
    mean = mean_figures(reports)
    lines.append(f"{'mean':<16}{'':>8}{mean['rank1']:>9.2%}{mean['rank5']:>9.2%}"
                 f"{mean['rank10']:>9.2%}{mean['mAP']:>9.2%}")
    return "\n".join(lines)


def _format_report(report: EvaluationReport, threshold_source: str) -> str:
    """Render the report's figures as aligned text lines."""
    v = report.verification
    c = report.counts
    return "\n".join([
        f"model                 {report.model_id}",
        f"query                 {c['query_images']} images of {c['query_persons']} persons "
        f"({c['valid_queries']} with a match in the gallery)",
        f"gallery               {c['gallery_images']} images of {c['gallery_persons']} persons",
        f"rank-1                {report.rank1:.2%}",
        f"rank-5                {report.rank5:.2%}",
        f"rank-10               {report.rank10:.2%}",
        f"mAP                   {report.mAP:.2%}",
        f"threshold             {report.threshold:.4f} ({threshold_source})",
        f"accuracy              {v['accuracy']:.2%}",
        f"precision             {v['precision']:.2%}",
        f"detection rate        {v['detection_rate']:.2%}",
        f"false detection rate  {v['false_detection_rate']:.4%}",
        f"pairs                 tp {v['tp']}  fp {v['fp']}  tn {v['tn']}  fn {v['fn']}",
        f"time                  {report.seconds:.1f} s",
    ])


def _format_reranked(figures: dict[str, float | int]) -> str:
    """Render re-ranked figures as text lines, apart from the standard ones."""
    return "\n".join([
        f"re-ranked (k-reciprocal, k1={figures['k1']} k2={figures['k2']} "
        f"lambda={figures['lambda']:g}; not the standard protocol)",
        f"  rank-1              {figures['rank1']:.2%}",
        f"  rank-5              {figures['rank5']:.2%}",
        f"  rank-10             {figures['rank10']:.2%}",
        f"  mAP                 {figures['mAP']:.2%}",
    ])


@click.command("evaluate")
@_query_option
@_gallery_option
@_set_option
@_model_option
@click.option("--threshold", type=float, default=None,
              help=f"Match threshold (default: the model's calibrated one, else {FALLBACK_THRESHOLD}).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write CMC, ROC, score and ranked-result PNGs into this folder (one sub-folder per "
                   "set when there are several).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Images per embedding call.")
@click.option("--rerank", is_flag=True,
              help="Also report ranks and mAP after k-reciprocal re-ranking (Zhong et al. 2017), "
                   "apart from the standard figures.")
@click.option("--rerank-k1", type=click.IntRange(min=1), default=K1, show_default=True,
              help="Re-ranking: size of the k-reciprocal neighbourhoods.")
@click.option("--rerank-k2", type=click.IntRange(min=1), default=K2, show_default=True,
              help="Re-ranking: neighbours averaged in the local query expansion.")
@click.option("--rerank-lambda", type=click.FloatRange(0.0, 1.0), default=LAMBDA,
              show_default=True, help="Re-ranking: weight of the original distance.")
def evaluate_command(query_dir: Path | None, gallery_dir: Path | None, set_dirs: tuple[Path, ...],
                     model_spec: str | None, threshold: float | None, as_json: bool,
                     plots_dir: Path | None, batch_size: int, rerank: bool, rerank_k1: int,
                     rerank_k2: int, rerank_lambda: float) -> None:
    """Measure rank-1/5/10, mAP and verification figures of a model on query/gallery folders.

    With several sets (e.g. --set ../shared/data/multisource/val, a folder of sets) each set's
    figures are printed, then a table of all of them and their mean.
    """
    from embedder.evaluation.plots import write_plots  # matplotlib loads only when asked for

    splits = _splits(query_dir, gallery_dir, set_dirs)
    embedder = _build_embedder(model_spec)
    threshold, source = embedder.match_threshold(threshold)
    reports = _evaluate(embedder, splits, threshold, batch_size)
    several = len(reports) > 1
    results = []
    for report in reports:
        reranked = reranked_figures(report, rerank_k1, rerank_k2, rerank_lambda) if rerank else None
        plots: list[Path] = []
        if plots_dir is not None:
            try:
                plots = write_plots(report, plots_dir / set_name(report) if several else plots_dir)
            except (OSError, ValueError) as error:
                raise click.ClickException(f"cannot write plots: {error}") from error
        results.append((report, reranked, plots))
    if as_json:
        figures = [{**report.to_dict(), "name": set_name(report), "plots": [str(path) for path in plots],
                    **({"reranked": reranked} if reranked is not None else {})}
                   for report, reranked, plots in results]
        click.echo(json.dumps({"sets": figures, "mean": mean_figures(reports), "threshold_source": source}
                              if several else {**figures[0], "threshold_source": source}))
        return
    for report, reranked, plots in results:
        if several:
            click.echo(f"== {set_name(report)}")
        click.echo(_format_report(report, source))
        if reranked is not None:
            click.echo(_format_reranked(reranked))
        for path in plots:
            click.echo(f"plot                  {path}")
    if several:
        click.echo(_format_sets(reports))


@click.command("calibrate")
@_query_option
@_gallery_option
@_set_option
@click.option("--target-fmr", type=click.FloatRange(0.0, 1.0), default=0.01, show_default=True,
              help="Largest acceptable false match rate over different-person pairs.")
@_model_option
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Images per embedding call.")
def calibrate_command(query_dir: Path | None, gallery_dir: Path | None, set_dirs: tuple[Path, ...],
                      target_fmr: float, model_spec: str | None, batch_size: int) -> None:
    """Pick the match threshold for a target false match rate and store it in metadata.json.

    With several sets the pairs of all of them are pooled (pairs across sets are not formed).
    """
    splits = _splits(query_dir, gallery_dir, set_dirs)
    spec = model_spec or registry.default_embedder_spec()
    model_dir = Path(spec)
    if not model_dir.is_dir():
        raise click.UsageError(
            f"calibration is stored in a model directory's metadata.json, but {spec!r} is not a "
            "directory; pass --model DIR")
    embedder = _build_embedder(spec)
    reports = _evaluate(embedder, splits, FALLBACK_THRESHOLD, batch_size)
    try:
        calibration = calibrate(reports, target_fmr)
        reports = [with_threshold(report, calibration.threshold) for report in reports]
        store_calibration(model_dir, calibration, reports)
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    mean = mean_figures(reports)
    click.echo("\n".join([
        f"stored in             {model_dir / 'metadata.json'}",
        f"threshold             {calibration.threshold:.6f}",
        f"target FMR            {calibration.target_fmr:g}",
        f"achieved FMR          {calibration.fmr:.4%} of {calibration.impostor_pairs} different-person pairs",
        f"TMR                   {calibration.tmr:.2%} of {calibration.genuine_pairs} same-person pairs",
        f"rank-1                {mean['rank1']:.2%}" + (" (mean over the sets)" if len(reports) > 1 else ""),
        f"rank-5                {mean['rank5']:.2%}",
        f"rank-10               {mean['rank10']:.2%}",
        f"mAP                   {mean['mAP']:.2%}",
    ]))


@click.command("verify")
@click.argument("image_a", type=_image)
@click.argument("image_b", type=_image)
@_model_option
@click.option("--threshold", type=float, default=None,
              help=f"Match threshold (default: the model's calibrated one, else {FALLBACK_THRESHOLD}).")
def verify_command(image_a: Path, image_b: Path, model_spec: str | None,
                   threshold: float | None) -> None:
    """Print TRUE if the two images show the same person, else FALSE, with the score."""
    try:
        images = [read_image(image_a), read_image(image_b)]
    except ImageError as error:
        raise click.ClickException(str(error)) from error
    embedder = _build_embedder(model_spec)
    threshold, source = embedder.match_threshold(threshold)
    vectors = embedder.embed(images)
    score = float(vectors[0] @ vectors[1])
    verdict = "TRUE" if score >= threshold else "FALSE"
    click.echo(f"{verdict} score={score:.4f} threshold={threshold:.4f} ({source})")


def register(group: click.Group) -> None:
    """Add the evaluate, calibrate and verify commands to ``group``."""
    for command in (evaluate_command, calibrate_command, verify_command):
        group.add_command(command)
