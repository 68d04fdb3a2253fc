"""``dbench score RUN --metrics a,b``: score a saved run with more metrics (no retraining).

``--set METRIC.key=value`` goes through the one settings path
(:func:`dbench.engine.settings.parse_items` and :func:`~dbench.engine.settings.route`); the
work happens in :func:`dbench.engine.rescore.rescore`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dbench.cli.options import DataDir, Progress, ResultsDir, metric_list, settings_option
from dbench.errors import UserError


def score(
    run: Annotated[str, typer.Argument(help="Run id, unique id prefix, or record path.")],
    metrics: Annotated[str, typer.Option(help="Comma-separated metrics to score.")],
    settings: Annotated[
        list[str] | None,
        settings_option("METRIC.key=value, e.g. dci.fast=true or mig.num_bins=30."),
    ] = None,
    representation: Annotated[
        str,
        typer.Option(
            help="mean: the posterior mean, as every run is scored; sampled: one draw of "
            "q(z|x) per image, into the sibling record RUN-sampled (dbench study compares "
            "the two).",
        ),
    ] = "mean",
    results_dir: ResultsDir = None,
    data_dir: DataDir = None,
    progress: Progress = True,
) -> None:
    """Score a saved run with more metrics and merge them into its record."""
    from dbench.engine.rescore import rescore
    from dbench.engine.settings import parse_items, route
    from dbench.paths import results_root
    from dbench.progress import quiet
    from dbench.registry import METRICS

    names = metric_list(metrics) or []
    scoped = route(parse_items(settings or []), METRICS.names())
    misplaced = {"model": scoped.model, "dataset": scoped.dataset, "budget": scoped.budget}
    shown = "; ".join(f"{scope} {', '.join(keys)}" for scope, keys in misplaced.items() if keys)
    if shown:
        raise UserError(f"score --set takes METRIC.key=value only; got settings of {shown}")
    unscored = [name for name in scoped.metrics if name not in names]
    if unscored:
        raise UserError(f"--set {unscored[0]}.*: {unscored[0]!r} is not one of --metrics {names}")
    with quiet(not progress):  # --no-progress: the one switch, for everything below
        record = rescore(results_root(results_dir), run, names, scoped.metrics,
                         data_dir=data_dir, representation=representation)  # fmt: skip
    typer.echo(f"run {record['run_id']}")
    notes = {
        "reproduced": "reproduced exactly (same settings, identical scores)",
        "changed settings": "new settings; the previous scores are kept in the record's history",
        "differs": "same settings but different scores (another machine or library?); "
        "the previous scores are kept in the record's history",
        "added": "added",
    }
    for name in names:
        shown = "  ".join(f"{k}={v:.4f}" for k, v in record["scores"][name].items())
        typer.echo(f"  {name}: {shown}  [{notes[record['outcome'][name]]}]")
    typer.echo(f"  record: {record['path']}")
