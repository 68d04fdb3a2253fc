"""``dbench leaderboard``, ``dbench show RUN`` and ``dbench report``: results read back.

pandas, seaborn and torch load inside the commands, so ``dbench --help`` stays fast.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from dbench.cli.options import DataDir, ResultsDir, output_option
from dbench.errors import UserError


@contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Library warnings (skipped records) as one ``warning:`` line each, not a Python trace."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for item in caught:
        if issubclass(item.category, UserWarning):
            typer.echo(f"warning: {item.message}", err=True)


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
    from dbench.reporting.aggregate import aggregate, filtered_runs, load_records, warn_skipped
    from dbench.reporting.published import comparison, comparison_caption, comparison_display
    from dbench.reporting.tables import FORMATS, render, render_display

    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r} (choose from {', '.join(FORMATS)})")
    if long and fmt not in ("csv", "json"):
        raise UserError("--long applies to --format csv or json")
    root = results_root(results_dir)
    with _warnings_to_stderr():
        records, skipped = load_records(root)
        warn_skipped(skipped)
    runs, meta = filtered_runs(records, dataset, model, metric)
    if runs.empty:
        typer.echo(f"no runs recorded under {root / 'runs'} match these filters", err=True)
        return
    width = shutil.get_terminal_size((200, 24)).columns
    if not compare:
        board = aggregate(runs, meta, metric)
        text = render(board, fmt, width=width, all_scores=all_scores, long=long)
    else:
        table = comparison(runs, meta, compare)  # ranked by the published table's metric
        if table.attrs.get("note"):
            typer.echo(f"note: {table.attrs['note']}", err=True)
        if fmt in ("csv", "json"):
            text = render_display(table, fmt)
        else:
            text = render_display(comparison_display(table), fmt, comparison_caption(table), width)
    _emit(text, output, "leaderboard")
    if plots is not None:
        _write_summary_plots(runs, aggregate(runs, meta, metric), plots)


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
    run: Annotated[str, typer.Argument(help="Run id, unique id prefix, or record path.")],
    output: Annotated[Path, output_option("Folder for the PNG figures.")] = Path("figures"),
    span: Annotated[float, typer.Option(min=0.1, help="Traverse each latent over ±SPAN.")] = 3.0,
    steps: Annotated[int, typer.Option(min=2, help="Images per traversal row.")] = 9,
    seed: Annotated[int, typer.Option(min=0, help="Picks the reference image.")] = 0,
    results_dir: ResultsDir = None,
    data_dir: DataDir = None,
) -> None:
    """Per-run figures from a saved model: latent traversals (any model that decodes, PCA
    included), KL per latent, and a latent map for any 2-D representation."""
    from dbench.engine.store import find_record
    from dbench.paths import results_root
    from dbench.reporting.plots import run_figures, save

    root = results_root(results_dir)
    record = find_record(root, run)
    with _warnings_to_stderr():
        figures, skipped = run_figures(record, root, data_dir, span=span, steps=steps, seed=seed)
    run_id = record["run_id"]
    for name, fig in figures.items():
        typer.echo(f"wrote {save(fig, output / f'{run_id}-{name}.png')}")
    for message in skipped:
        typer.echo(f"note: {message}", err=True)
    if not figures:
        typer.echo(f"no figures could be made for run {record['run_id']}", err=True)


def report(
    output: Annotated[Path, output_option("The HTML file to write.")] = Path("report.html"),
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    metric: Annotated[str | None, typer.Option(help="Rank and plot by this metric.")] = None,
    compare: Annotated[
        str, typer.Option(help="Published table to compare with (higgins2017, a CSV, or none).")
    ] = "higgins2017",
    per_run: Annotated[
        int, typer.Option(min=0, help="Configurations that get per-run latent figures.")
    ] = 3,
    results_dir: ResultsDir = None,
    data_dir: DataDir = None,
) -> None:
    """One self-contained HTML page: per dataset its leaderboard, the published comparison and
    figures."""
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
        )
    typer.echo(f"wrote {output}")
