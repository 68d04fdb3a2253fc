"""``dbench run``: train one model on one dataset, score it, write its record.

Every value a run is given reaches its :class:`~dbench.engine.config.RunConfig` through the one
settings path, :func:`dbench.engine.settings.apply`, in layers (a later one wins): a named
budget of the model, then the shorthand flags (``--beta``, ``--steps``, ``--batch-size``), then
``--set``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dbench.cli.options import (
    DataDir,
    Device,
    Metrics,
    Precision,
    Progress,
    ResultsDir,
    Steps,
    metric_list,
    settings_option,
)
from dbench.errors import Interrupted, UserError


def run(
    model: Annotated[str, typer.Option("--model", "-m", help="Registered model name.")],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Registered dataset.")] = (
        "dsprites"
    ),
    beta: Annotated[float | None, typer.Option(help="Shorthand for --set beta=X.")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed.")] = 0,
    metrics: Metrics = None,
    settings: Annotated[
        list[str] | None,
        settings_option(
            "key=value: a model kwarg; dataset.key=v, budget.steps=N, "
            "budget.checkpoint_every=N, METRIC.key=v."
        ),
    ] = None,
    steps: Steps = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size.")] = None,
    budget: Annotated[
        str | None,
        typer.Option(help="A named budget of the model, e.g. paper (300,000 steps, batch 64)."),
    ] = None,
    device: Device = "auto",
    precision: Precision = "auto",
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = (
        False
    ),
    overwrite: Annotated[
        bool, typer.Option(help="Train again even if this run's record exists (old one kept).")
    ] = False,
    progress: Progress = True,
    results_dir: ResultsDir = None,
    data_dir: DataDir = None,
) -> None:
    """Train one model on one dataset, score it, and write its run record."""
    from dbench.engine.config import RunConfig
    from dbench.engine.settings import apply, merge, parse_items
    from dbench.progress import quiet
    from dbench.registry import MODELS

    config = RunConfig(
        model=model,
        dataset=dataset,
        metrics=metric_list(metrics),
        seed=seed,
        device=device,
        precision=precision,
        data_dir=data_dir,
        results_dir=str(results_dir) if results_dir else None,
        resume=resume,
        overwrite=overwrite,
    )
    presets = getattr(MODELS.get(model), "presets", {}) if budget else {}
    shorthands = {"beta": beta, "budget.steps": steps, "budget.batch_size": batch_size}
    layers = merge(
        _named_budget(model, budget, presets),
        {key: value for key, value in shorthands.items() if value is not None},
        parse_items(settings or []),
    )
    apply(config, layers)
    with quiet(not progress):  # --no-progress: one switch for the data, training and scoring
        record = _train_and_score(config, resume, progress)
    if record.get("existing"):
        typer.echo(
            f"run {record['run_id']} already exists: its record is shown, nothing was trained "
            "(--overwrite trains it again)",
            err=True,
        )
    typer.echo(f"run {record['run_id']}")
    for metric_name, scores in record["scores"].items():
        shown = "  ".join(f"{k}={v:.4f}" for k, v in scores.items())
        typer.echo(f"  {metric_name}: {shown}")
    typer.echo(f"  record: {record['path']}")


def _train_and_score(config: Any, resume: bool, progress: bool) -> dict[str, Any]:
    from dbench.engine.resolve import resolve_run
    from dbench.engine.run import has_checkpoint, run_one
    from dbench.engine.store import record_path
    from dbench.paths import results_root

    resolved = resolve_run(config)
    if resume and not record_path(results_root(config.results_dir), resolved.run_id).is_file():
        if not has_checkpoint(results_root(config.results_dir), resolved.run_id):
            raise UserError(
                f"--resume: run {resolved.run_id} has no training checkpoint to continue from; "
                "run the same command without --resume to start from step 0"
            )
    try:
        return run_one(config, resolved=resolved, progress=progress)
    except KeyboardInterrupt as exc:
        checkpoint = getattr(exc, "dbench_checkpoint", None)
        kept = (
            f"its last training checkpoint is kept at {checkpoint} (continue with the same "
            "command plus --resume)"
            if checkpoint
            else "no training checkpoint had been written yet, so nothing was kept "
            "(the first comes after --set budget.checkpoint_every steps, default 1000)"
        )
        raise Interrupted(f"no record was written; {kept}") from None


def _named_budget(model: str, name: str | None, presets: dict[str, Any]) -> dict[str, Any]:
    """The model's budget called ``name`` as ``budget.*`` settings (the lowest layer)."""
    if name is None:
        return {}
    if name not in presets:
        known = ", ".join(presets) or "none"
        raise UserError(f"model {model!r} has no budget named {name!r} (known: {known})")
    chosen = presets[name].as_dict()
    return {f"budget.{key}": value for key, value in chosen.items() if value is not None}
