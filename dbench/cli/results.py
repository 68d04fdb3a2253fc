"""CLI commands for results: ``leaderboard`` (its body), ``show RUN`` and ``report``.

Module level imports typer and the standard library only (cli.py imports this module at
start-up and ``dbench --help`` must stay fast); pandas, seaborn and torch load inside commands.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from dbench.cli.options import DataDir, ResultsDir


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
    from dbench.errors import UserError

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc}") from None
    typer.echo(f"wrote {what} to {output}", err=True)


def leaderboard_command(
    results_dir: Path | None,
    *,
    dataset: str | None,
    model: str | None,
    metric: str | None,
    fmt: str,
    output: Path | None,
    compare: str | None,
    plots: Path | None,
) -> None:
    """The body of ``dbench leaderboard`` (declared in cli.py)."""
    from dbench.errors import UserError
    from dbench.paths import results_root
    from dbench.reporting.aggregate import aggregate, filtered_runs, load_records, warn_skipped
    from dbench.reporting.tables import FORMATS, render

    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r} (choose from {', '.join(FORMATS)})")
    root = results_root(results_dir)
    with _warnings_to_stderr():
        records, skipped = load_records(root)
        warn_skipped(skipped)
    runs, meta = filtered_runs(records, dataset, model, metric)
    if runs.empty:
        typer.echo(f"no runs recorded under {root / 'runs'} match these filters", err=True)
        return
    width = shutil.get_terminal_size((200, 24)).columns
    if compare:
        text = _comparison_text(runs, meta, compare, fmt, width)
    else:
        text = render(aggregate(runs, meta, metric), fmt, width=width)
    _emit(text, output, "leaderboard")
    if plots is not None:
        _write_summary_plots(runs, aggregate(runs, meta, metric), plots)


def _comparison_text(runs: Any, meta: dict, compare: str, fmt: str, width: int) -> str:
    from dbench.reporting.aggregate import aggregate
    from dbench.reporting.tables import (
        compare_published,
        comparison_caption,
        comparison_display,
        csv_frame_text,
        published_metric,
        render_display,
    )

    # A published table names its own metric (higgins.eval_accuracy): rank and match by it.
    metric = published_metric(compare)
    board = aggregate(runs, meta, metric if metric in meta else None)
    table = compare_published(board, compare)
    if fmt == "csv":
        return csv_frame_text(table)
    return render_display(comparison_display(table), fmt, comparison_caption(table), width)


def _write_summary_plots(runs: Any, board: Any, folder: Path) -> None:
    from dbench.reporting.plots import save, summary_figures

    score = board.attrs.get("rank_by")
    if not score:
        typer.echo("no scores to plot", err=True)
        return
    figures, skipped = summary_figures(runs, score, board.attrs.get("lower_is_better", False))
    for name, fig in figures.items():
        typer.echo(f"wrote {save(fig, folder / f'{name}.png')}", err=True)
    for message in skipped:
        typer.echo(f"note: {message}", err=True)


def show(
    run: Annotated[str, typer.Argument(help="Run id, unique id prefix, or record path.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNG figures.")] = Path(
        "figures"
    ),
    span: Annotated[float, typer.Option(min=0.1, help="Traverse each latent over ±SPAN.")] = 3.0,
    steps: Annotated[int, typer.Option(min=2, help="Images per traversal row.")] = 9,
    seed: Annotated[int, typer.Option(min=0, help="Picks the reference image.")] = 0,
    results_dir: ResultsDir = None,
    data_dir: DataDir = None,
) -> None:
    """Per-run figures from a saved model: latent traversals, KL per latent, 2-D latent maps."""
    from dbench.engine.store import find_record
    from dbench.paths import results_root
    from dbench.reporting.plots import run_figures, save

    root = results_root(results_dir)
    record = find_record(root, run)
    with _warnings_to_stderr():
        figures, skipped = run_figures(
            record, root, str(data_dir) if data_dir else None, span=span, steps=steps, seed=seed
        )
    run_id = record["run_id"]
    for name, fig in figures.items():
        typer.echo(f"wrote {save(fig, out / f'{run_id}-{name}.png')}")
    for message in skipped:
        typer.echo(f"note: {message}", err=True)
    if not figures:
        typer.echo(f"no figures could be made for run {record['run_id']}", err=True)


def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
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
    """One self-contained HTML page: leaderboard, published comparison and figures."""
    from dbench.paths import results_root
    from dbench.reporting.html import build_report

    with _warnings_to_stderr():
        build_report(
            results_root(results_dir),
            out,
            dataset=dataset,
            metric=metric,
            compare=None if compare == "none" else compare,
            per_run=per_run,
            data_dir=str(data_dir) if data_dir else None,
        )
    typer.echo(f"wrote {out}")
