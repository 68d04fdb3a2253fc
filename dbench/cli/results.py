"""``dbench leaderboard``, ``dbench show RUN`` and ``dbench report``: results read back.

pandas, seaborn and torch load inside the commands, so ``dbench --help`` stays fast.
"""

from __future__ import annotations

import hashlib
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from dbench.cli.options import DataDir, ResultsDir, output_option, printable
from dbench.errors import UserError


@contextmanager
def _warnings_to_stderr(lines: list[str] | None = None) -> Iterator[None]:
    """Library warnings (skipped records) as one ``warning:`` line each, not a Python trace;
    ``lines``: also collected there (the result cache replays them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for item in caught:
        if issubclass(item.category, UserWarning):
            _stderr(f"warning: {item.message}", lines)


def _stderr(line: str, lines: list[str] | None) -> None:
    line = printable(line)
    typer.echo(line, err=True)
    if lines is not None:
        lines.append(line)


def _emit(text: str, output: Path | None, what: str) -> None:
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc}") from None
    typer.echo(f"wrote {what} to {output}", err=True)


def leaderboard(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    metric: Annotated[
        str | None, typer.Option(help="Only this metric, and rank by its headline score.")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="table, csv, markdown, latex, html or json (csv/json: tidy)."
        ),
    ] = "table",
    all_scores: Annotated[
        bool,
        typer.Option("--all-scores", help="Every score, not just each metric's headline score."),
    ] = False,
    long: Annotated[
        bool,
        typer.Option("--long", help="csv/json: one row per configuration x score."),
    ] = False,
    training: Annotated[
        bool,
        typer.Option("--training", help="Also the end-of-training reconstruction loss."),
    ] = False,
    output: Annotated[Path | None, output_option("Write to FILE (default: the terminal).")] = None,
    compare: Annotated[
        str | None,
        typer.Option(help="Also show a published table side by side: higgins2017 or a CSV."),
    ] = None,
    plots: Annotated[
        Path | None, typer.Option(help="Also write the summary figures (PNG) into DIR.")
    ] = None,
    results_dir: ResultsDir = None,
) -> None:
    """Mean +- std over seeds per configuration, one table per dataset, ranked within it."""
    from dbench.paths import results_root
    from dbench.reporting import result_cache
    from dbench.reporting.tables import FORMATS

    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r} (choose from {', '.join(FORMATS)})")
    if long and fmt not in ("csv", "json"):
        raise UserError("--long applies to --format csv or json")
    root = results_root(results_dir)
    width = shutil.get_terminal_size((200, 24)).columns
    args = {
        "dataset": dataset,
        "model": model,
        "metric": metric,
        "format": fmt,
        "all_scores": all_scores,
        "long": long,
        "training": training,
        "width": width,
        "compare": compare,
        "table": _table_digest(compare),
        "root": str(root.absolute()),
    }
    # Only a call that writes nothing but its output is cached: files it writes (--output,
    # --plots) are always written anew. A --compare table that cannot be hashed: no cache.
    name = None
    if output is None and plots is None and (compare is None or args["table"] is not None):
        name = result_cache.key(root, "leaderboard", args)
    stored = result_cache.replay(root, name) if name else None
    if stored is not None:
        stdout, lines, _ = stored
        for line in lines:
            typer.echo(line, err=True)
        _emit(stdout, None, "leaderboard")
        return
    lines: list[str] = []
    # A Python warning of pandas & co. cannot be replayed as Python prints it: shown as it
    # would have been, and that output is not cached.
    stray: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as stray:
            result = _leaderboard(root, dataset, model, metric, fmt, all_scores, long, training,
                                  compare, width, lines)  # fmt: skip
    finally:  # on an error too
        for item in stray:
            warnings.showwarning(item.message, item.category, item.filename, item.lineno)
    if result is None:
        return
    text, runs, meta = result
    _emit(text, output, "leaderboard")
    if name is not None and not stray:
        result_cache.store(root, "leaderboard", args, name, text, lines)
    if plots is not None:
        from dbench.reporting.aggregate import aggregate

        _write_summary_plots(runs, aggregate(runs, meta, metric), plots)


def _table_digest(compare: str | None) -> str | None:
    """SHA-256 of the --compare table's file (a CSV, or a published table beside the
    package, which the source fingerprint does not cover); None when it cannot be read."""
    if compare is None:
        return None
    from dbench.reporting.published import published_path

    try:
        return hashlib.sha256(published_path(compare).read_bytes()).hexdigest()
    except (UserError, OSError):
        return None


def _leaderboard(root, dataset, model, metric, fmt, all_scores, long, training, compare, width,
                 lines) -> tuple[str, Any, Any] | None:  # fmt: skip
    """The leaderboard's text, runs and metrics meta (None: no run matches); its stderr lines
    are printed and collected into ``lines``."""
    from dbench.reporting.aggregate import aggregate, filtered_runs, load_records, warn_skipped
    from dbench.reporting.published import comparison, comparison_caption, comparison_display
    from dbench.reporting.tables import render, render_display

    with _warnings_to_stderr(lines):  # skipped records, and two records of one run
        records, skipped = load_records(root)
        warn_skipped(skipped)
        runs, meta = filtered_runs(records, dataset, model, metric)
    if runs.empty:
        typer.echo(f"no runs recorded under {root / 'runs'} match these filters", err=True)
        return None
    if not compare:
        board = aggregate(runs, meta, metric)
        text = render(board, fmt, width=width, all_scores=all_scores, long=long, training=training)
    else:
        table = comparison(runs, meta, compare)  # ranked by the published table's metric
        if table.attrs.get("note"):
            _stderr(f"note: {table.attrs['note']}", lines)
        if fmt in ("csv", "json"):
            text = render_display(table, fmt)
        else:
            text = render_display(comparison_display(table), fmt, comparison_caption(table), width)
    return text, runs, meta


def _write_summary_plots(runs: Any, board: Any, folder: Path) -> None:
    from dbench.reporting.figures import summary_figures
    from dbench.reporting.plots import save

    score = board.attrs.get("rank_by")
    if not score:
        typer.echo("no scores to plot", err=True)
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write figures to {folder}: {exc}") from None
    figures, skipped = summary_figures(runs, score, board.attrs.get("lower_is_better", False))
    for name, fig in figures.items():
        typer.echo(f"wrote {save(fig, folder / f'{name}.png')}", err=True)
    for message in skipped:
        typer.echo(f"note: {message}", err=True)


def show(
    runs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Run id, unique id prefix, or record path; several 2-D runs: one figure of "
            "rows (held-out latent scatter | decoded grid)."
        ),
    ] = None,
    output: Annotated[
        Path,
        output_option("Folder for the PNG figures (several runs: or the .png file to write)."),
    ] = Path("figures"),
    span: Annotated[
        float | None,
        typer.Option(min=0.1, help="Traverse each latent over ±SPAN (3; 4 for several runs)."),
    ] = None,
    steps: Annotated[int, typer.Option(min=2, help="Images per traversal row.")] = 9,
    seed: Annotated[int, typer.Option(min=0, help="Picks the reference image.")] = 0,
    preset: Annotated[
        str | None,
        typer.Option(help="The recorded runs of this sweep preset, as rows of one figure."),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="With --preset: only these seeds (0-2, 0,3).")
    ] = None,
    codes: Annotated[
        Path | None,
        typer.Option(
            help="A run scored by dbench evaluate: the codes it scored (.npz, as "
            "--representations takes), for its 2-D latent map."
        ),
    ] = None,
    results_dir: ResultsDir = None,
    data_dir: DataDir = None,
) -> None:
    """Per-run figures from a saved model: latent traversals (any model that decodes, PCA
    included), KL per latent, and a latent map for any 2-D representation (for a run of dbench
    evaluate, from its codes). Several runs (or --preset): one figure, a row per run, of
    held-out images' 2-D latents by class next to the decoded grid (the levy2020 preset's
    Figure 6)."""
    from dbench.engine.store import find_record
    from dbench.paths import results_root
    from dbench.reporting.figure_grid import codes_figures, scored_elsewhere
    from dbench.reporting.plots import run_figures, save

    runs = list(runs or [])
    if seeds is not None and not preset:
        raise UserError("--seeds applies to --preset")
    if preset and runs:
        raise UserError("give run ids or --preset, not both")
    if not preset and not runs:
        raise UserError("give a run id (several for one figure of rows) or --preset NAME")
    if codes is not None and (preset or len(runs) > 1):
        raise UserError("--codes applies to one run scored by dbench evaluate")
    root = results_root(results_dir)
    if preset or len(runs) > 1:
        _show_rows(root, runs, preset, seeds, output, span, steps, seed, data_dir)
        return
    record = find_record(root, runs[0])
    span = 3.0 if span is None else span
    evaluated = scored_elsewhere(record)
    if codes is not None and not evaluated:
        raise UserError(f"--codes applies to runs scored by dbench evaluate; {runs[0]} has a model")
    with _warnings_to_stderr():
        if evaluated:  # no model state: the latent map of the codes it scored, if 2-D
            figures, skipped = codes_figures(record, root, data_dir, codes, seed=seed)
        else:
            figures, skipped = run_figures(record, root, data_dir, span=span, steps=steps,
                                           seed=seed)  # fmt: skip
    run_id = record["run_id"]
    for name, fig in figures.items():
        typer.echo(f"wrote {save(fig, output / f'{run_id}-{name}.png')}")
    for message in skipped:
        typer.echo(f"note: {message}", err=True)
    if not figures and not evaluated:  # an evaluate run's one note says why
        typer.echo(f"no figures could be made for run {record['run_id']}", err=True)


def _show_rows(root, runs, preset, seeds, output, span, steps, seed, data_dir) -> None:
    """``dbench show RUN1 RUN2 ...`` / ``--preset``: one PNG, a row per run."""
    import hashlib

    from dbench.engine.store import find_record
    from dbench.reporting.figure_grid import latent_rows, run_label
    from dbench.reporting.plots import save

    if preset:
        rows, name = _preset_rows(root, preset, seeds, data_dir), f"{Path(preset).stem}-rows"
    else:
        records = [find_record(root, run) for run in runs]
        rows = [(r, run_label(r, records)) for r in records]
        ids = "|".join(r["run_id"] for r in records)
        name = f"rows-{hashlib.sha256(ids.encode()).hexdigest()[:8]}"
    with _warnings_to_stderr():
        fig = latent_rows(
            rows, root, data_dir, span=4.0 if span is None else span, steps=steps, seed=seed
        )
    path = output if output.suffix.lower() == ".png" else output / f"{name}.png"
    typer.echo(f"wrote {save(fig, path)} ({len(rows)} rows)")


def _preset_rows(root, preset, seeds, data_dir) -> list:
    """(record, label) of every run of ``preset`` (as ``dbench sweep --preset`` names it, with
    the preset's settings) that has a record under ``root``, in the preset's order."""
    from dbench.engine.resolve import resolve_run
    from dbench.engine.store import read_record, record_path
    from dbench.sweep.plan import expand, parse_seeds
    from dbench.sweep.presets import load_preset, preset_requests

    seed_list = parse_seeds(seeds) if seeds is not None else None
    requests = preset_requests(load_preset(preset), seeds=seed_list)
    rows, missing = [], []
    for plan in expand(requests, data_dir=data_dir, results_dir=str(root)):
        path = record_path(root, resolve_run(plan.config).run_id)
        if path.is_file():
            rows.append((read_record(path), plan.label))
        else:
            missing.append(plan.label)
    if not rows:
        raise UserError(
            f"no run of preset {preset!r} is recorded under {root} (run dbench sweep --preset "
            f"{preset}; runs made with --set or --steps: give their ids)"
        )
    if missing:
        typer.echo(
            f"note: {len(missing)} of the preset's runs have no record (such as {missing[0]!r}); "
            "--seeds narrows the preset",
            err=True,
        )
    return rows


def report(
    output: Annotated[Path, output_option("The HTML file to write.")] = Path("report.html"),
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    metric: Annotated[str | None, typer.Option(help="Rank and plot by this metric.")] = None,
    compare: Annotated[
        str, typer.Option(help="Published table to compare with (higgins2017, a CSV, or none).")
    ] = "higgins2017",
    per_run: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="At most this many configurations per dataset get per-run figures (default: "
            "every one with a saved model; 0: none).",
        ),
    ] = None,
    study: Annotated[
        bool,
        typer.Option(
            "--study/--no-study",
            help="Also the study analyses (dbench study) of datasets whose runs compare two "
            "or more methods.",
        ),
    ] = True,
    results_dir: ResultsDir = None,
    data_dir: DataDir = None,
) -> None:
    """One self-contained HTML page: per dataset its leaderboard, the published comparison and
    figures (and the study analyses where several methods were run)."""
    from dbench.paths import results_root
    from dbench.reporting.html import build_report

    with _warnings_to_stderr():
        build_report(
            results_root(results_dir),
            output,
            dataset=dataset,
            metric=metric,
            compare=None if compare == "none" else compare,
            per_run=per_run,
            data_dir=data_dir,
            study=study,
        )
    typer.echo(f"wrote {output}")
