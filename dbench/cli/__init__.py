"""The ``dbench`` command line (typer).

Imports only typer and dbench's light modules at start-up so ``dbench --help`` answers fast;
each command imports what it needs. Every :class:`~dbench.errors.UserError` becomes one line on
stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dbench.cli.options import DataDir, ResultsDir
from dbench.errors import UserError

app = typer.Typer(
    name="dbench",
    help="Benchmark disentangled representation learning: train, score, compare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _split_names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError("--metrics needs at least one metric name")
    return names


@app.command()
def run(
    model: Annotated[str, typer.Option("--model", "-m", help="Registered model name.")],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Registered dataset.")] = (
        "dsprites"
    ),
    beta: Annotated[float | None, typer.Option(help="Shorthand for --set beta=X.")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed.")] = 0,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated metrics (default: all cheap ones).")
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="key=value: a model kwarg; dataset.key=v, budget.steps=N, METRIC.key=v.",
        ),
    ] = None,
    steps: Annotated[int | None, typer.Option(min=0, help="Training steps.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size.")] = None,
    budget: Annotated[
        str | None,
        typer.Option(help="A named budget of the model, e.g. paper (300,000 steps, batch 64)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1, ...")] = "auto",
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = (
        False
    ),
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    results_dir: ResultsDir = None,
    data_dir: DataDir = None,
) -> None:
    """Train one model on one dataset, score it, and write its run record."""
    from dbench.contracts import Budget
    from dbench.engine.config import RunConfig, apply_settings
    from dbench.engine.run import run_one
    from dbench.registry import METRICS

    config = RunConfig(
        model=model,
        dataset=dataset,
        metrics=_split_names(metrics),
        seed=seed,
        budget=Budget(steps=steps, batch_size=batch_size).resolved(_named_budget(model, budget)),
        device=device,
        data_dir=str(data_dir) if data_dir else None,
        results_dir=str(results_dir) if results_dir else None,
        resume=resume,
        show_progress=progress,
    )
    if beta is not None:
        config.model_kwargs["beta"] = beta
    apply_settings(config, settings or [], METRICS.names())
    try:
        record = run_one(config)
    except KeyboardInterrupt:
        typer.echo(
            "interrupted: no record was written; training checkpoints are kept "
            "(continue with the same command plus --resume)",
            err=True,
        )
        raise typer.Exit(130) from None
    _print_record_summary(record)


def _named_budget(model: str, name: str | None):
    """The model's budget called ``name`` (``--steps``/``--batch-size`` still override it)."""
    from dbench.contracts import Budget
    from dbench.registry import MODELS

    if name is None:
        return Budget()
    presets = getattr(MODELS.get(model), "presets", {})
    if name not in presets:
        known = ", ".join(presets) or "none"
        raise UserError(f"model {model!r} has no budget named {name!r} (known: {known})")
    return presets[name]


def _print_record_summary(record: dict) -> None:
    typer.echo(f"run {record['run_id']}")
    for metric_name, scores in record["scores"].items():
        shown = "  ".join(f"{k}={v:.4f}" for k, v in scores.items())
        typer.echo(f"  {metric_name}: {shown}")
    typer.echo(f"  record: {record['path']}")


def _list(registry_name: str) -> None:
    from dbench import registry

    reg = getattr(registry, registry_name)
    width = max((len(n) for n in reg.names()), default=0)
    for name in reg.names():
        typer.echo(f"{name:<{width}}  {reg.entry(name).origin}")


@app.command("models")
def list_models() -> None:
    """List registered models (built-ins and plugins)."""
    _list("MODELS")


@app.command("datasets")
def list_datasets() -> None:
    """List registered datasets (built-ins and plugins)."""
    _list("DATASETS")


@app.command("metrics")
def list_metrics() -> None:
    """List registered metrics (built-ins and plugins)."""
    _list("METRICS")


@app.command()
def leaderboard(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    metric: Annotated[
        str | None, typer.Option(help="Only this metric, and rank by its headline score.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, csv, markdown, latex or html.")
    ] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to FILE.")] = None,
    compare: Annotated[
        str | None,
        typer.Option(help="Also show a published table side by side: higgins2017 or a CSV."),
    ] = None,
    plots: Annotated[
        Path | None, typer.Option(help="Also write the summary figures (PNG) into DIR.")
    ] = None,
    results_dir: ResultsDir = None,
) -> None:
    """Mean +- std over seeds of every score, one row per configuration, ranked."""
    from dbench.cli.results import leaderboard_command

    leaderboard_command(
        results_dir,
        dataset=dataset,
        model=model,
        metric=metric,
        fmt=fmt,
        output=output,
        compare=compare,
        plots=plots,
    )


# -- commands contributed by feature modules (one line each) ---------------------------------
from dbench.cli import results as cli_report  # noqa: E402  (typer and stdlib only: --help stays fast)

app.command("show")(cli_report.show)
app.command("report")(cli_report.report)
from dbench.cli.sweep import sweep  # noqa: E402  (typer and stdlib only)

app.command()(sweep)
from dbench.cli.data import app as data_app  # noqa: E402  (typer and stdlib only)

app.add_typer(data_app, name="data")
from dbench.cli.score import score  # noqa: E402  (typer and stdlib only)

app.command("score")(score)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
