"""``dbench score RUN --metrics a,b``: score a saved run with more metrics (no retraining).

Imports only typer and the standard library at module level, so ``dbench --help`` stays free
of torch and scikit-learn; the work happens in :func:`dbench.engine.rescore.rescore`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dbench.cli.options import DataDir, ResultsDir


def parse_metric_settings(items: list[str], metrics: list[str]) -> dict[str, dict]:
    """``METRIC.key=value`` items -> ``{metric: {key: value}}`` (values parsed as JSON)."""
    from dbench.engine.config import parse_value
    from dbench.errors import UserError

    out: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        scope, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise UserError(f"--set expects METRIC.key=value; got {item!r}")
        if scope not in metrics:
            raise UserError(f"--set {key.strip()}: {scope!r} is not one of --metrics {metrics}")
        out.setdefault(scope, {})[name] = parse_value(raw)
    return out


def score(
    run: Annotated[str, typer.Argument(help="Run id, unique id prefix, or record path.")],
    metrics: Annotated[str, typer.Option(help="Comma-separated metrics to score.")],
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="METRIC.key=value, e.g. dci.fast=true or mig.num_bins=30."),
    ] = None,
    results_dir: ResultsDir = None,
    data_dir: DataDir = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Score a saved run with more metrics and merge them into its record."""
    from dbench.engine.rescore import rescore
    from dbench.errors import UserError
    from dbench.paths import results_root

    names = [n.strip() for n in metrics.split(",") if n.strip()]
    if not names:
        raise UserError("--metrics needs at least one metric name")
    record = rescore(
        results_root(results_dir),
        run,
        names,
        parse_metric_settings(settings or [], names),
        data_dir=str(data_dir) if data_dir else None,
        show_progress=progress,
    )
    typer.echo(f"run {record['run_id']}")
    for name in names:
        shown = "  ".join(f"{k}={v:.4f}" for k, v in record["scores"][name].items())
        typer.echo(f"  {name}: {shown}")
    typer.echo(f"  record: {record['path']}")
