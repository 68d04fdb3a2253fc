"""``dbench sweep``: many runs as Ray Tune trials, on this machine or on a cluster.

Only typer and the standard library at module level (``dbench --help`` stays fast); the sweep
plan is built and checked before Ray is imported, so bad input costs no Ray start-up.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from dbench.checks import RUN_ID
from dbench.cli.options import (
    DataDir,
    Device,
    Metrics,
    Precision,
    ResultsDir,
    Steps,
    settings_option,
)
from dbench.errors import Interrupted, UserError


def _check_sweep_name(name: str) -> None:
    """A sweep name becomes a folder under the storage root: one safe path component."""
    if not RUN_ID.accepts(name):
        raise UserError(f"sweep name {name!r}: {RUN_ID.words} (no '/' or '..')")


def _default_name(base: str) -> str:
    return f"{base}-{time.strftime('%Y%m%d-%H%M%S')}"


def _storage(storage: str | None, results_dir: Path) -> str:
    if storage and "://" in storage:
        return storage  # s3://, gs://, ... : Tune syncs there
    return str(Path(storage).resolve() if storage else results_dir / "sweeps")


def sweep(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Registered model.")] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            "--datasets",
            help="Dataset (default: dsprites); with --preset, one or more (comma-separated) of "
            "its datasets.",
        ),
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            help="key=v1,v2,... (repeatable; cartesian product). Keys as in --set.",
        ),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Seeds: 0-4, 0,3,7 or 0-2,10 (default: 0).")
    ] = None,
    metrics: Metrics = None,
    settings: Annotated[
        list[str] | None,
        settings_option("key=value for every trial; MODEL.key=v for one model of a preset."),
    ] = None,
    steps: Steps = None,
    grid_points: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="With --preset: at most N values of each of its grid axes, evenly spaced, "
            "ends included (a slice spanning each range).",
        ),
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="A TOML preset: name in baselines/ or a path.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Sweep name (default: MODEL-or-PRESET-timestamp).")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(help="Continue the interrupted sweep NAME (only unfinished trials run)."),
    ] = None,
    cpus_per_trial: Annotated[
        float, typer.Option(min=0.01, help="CPUs per trial; torch uses that many threads.")
    ] = 1.0,
    gpus_per_trial: Annotated[
        float, typer.Option(min=0, help="GPUs per trial; fractions share a GPU (0.25).")
    ] = 0.0,
    max_concurrent: Annotated[
        int | None, typer.Option(min=1, help="At most this many trials at once.")
    ] = None,
    num_cpus: Annotated[
        int | None, typer.Option(min=1, help="CPUs for a local Ray (default: all).")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(envvar="RAY_ADDRESS", help="Ray cluster to use (host:port) [local Ray]."),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Tune's storage: shared path or URI (default: RESULTS/sweeps)."),
    ] = None,
    device: Device = "auto",
    precision: Precision = "auto",
    results_dir: ResultsDir = None,
    data_dir: DataDir = None,
) -> None:
    """Run a grid of runs (grid points x seeds) as Ray Tune trials; each writes its record."""
    from dbench.paths import data_root, results_root

    # Trials run in other processes and other working directories: absolute paths only.
    results = results_root(results_dir).resolve()
    options_storage = _storage(storage, results)
    data = str(data_root(data_dir).resolve())

    if address:  # fail in a second, before planning imports the datasets and metrics
        from dbench.sweep.ray_env import check_address

        check_address(address)
    plans = None
    if resume:
        given = (model, preset, grid, seeds, metrics, settings, steps, grid_points)
        if any(x is not None for x in given):
            raise UserError("--resume continues a sweep as it was defined; give only its name")
        sweep_name = resume
    else:
        plans, base = _plan(
            model,
            dataset,
            grid,
            seeds,
            metrics,
            settings,
            steps,
            preset,
            grid_points,
            (device, precision),
            data,
            str(results),
        )
        sweep_name = name or _default_name(base)
    _check_sweep_name(sweep_name)

    from dbench.sweep.driver import SweepOptions, run_sweep

    options = SweepOptions(
        name=sweep_name,
        storage=options_storage,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        address=address or None,
        num_cpus=num_cpus,
        max_concurrent=max_concurrent,
    )
    if plans is not None:
        typer.echo(f"sweep {sweep_name}: {len(plans)} trials -> {results}/runs")
    else:
        typer.echo(f"resuming sweep {sweep_name}")
    try:
        summary = run_sweep(plans, options, resume=bool(resume))
    except KeyboardInterrupt:  # a second Ctrl-C: Tune had no time to stop cleanly
        again = _resume_command(sweep_name, options.address, results_dir, storage)
        raise Interrupted(f"continue with: {again}") from None
    _print_summary(summary, options, results_dir, storage)


def _plan(
    model, dataset, grid, seeds, metrics, settings, steps, preset, grid_points, hardware, data,
    results,
):  # fmt: skip
    """The trials; ``hardware`` is (device, precision)."""
    from dbench.engine.settings import parse_items
    from dbench.sweep.plan import SweepRequest, expand, parse_grid, parse_seeds
    from dbench.sweep.presets import load_preset, preset_requests

    seed_list = parse_seeds(seeds) if seeds is not None else None
    metric_list = None
    if metrics is not None:
        metric_list = [m.strip() for m in metrics.split(",") if m.strip()]
        if not metric_list:
            raise UserError("--metrics needs at least one metric name")
    grid_dict = parse_grid(grid or [])
    set_dict = parse_items(settings or [], "--set")
    if preset:
        if model:
            raise UserError("give --model or --preset, not both")
        data_preset = load_preset(preset)
        requests = preset_requests(
            data_preset,
            dataset=dataset,
            seeds=seed_list,
            metrics=metric_list,
            settings=set_dict,
            grid=grid_dict,
            steps=steps,
            grid_points=grid_points,
        )
        base = Path(data_preset["path"]).stem
    elif model:
        if grid_points is not None:
            raise UserError("--grid-points slices the grid of a --preset")
        requests = [
            SweepRequest(
                model=model,
                dataset=dataset or "dsprites",
                grid=grid_dict,
                seeds=seed_list,
                settings=set_dict,
                metrics=metric_list,
                steps=steps,
            )
        ]
        base = model
    else:
        raise UserError("give --model, --preset or --resume NAME")
    device, precision = hardware
    plans = expand(requests, device=device, precision=precision, data_dir=data, results_dir=results)
    return plans, base


def _resume_command(name, address, results_dir, storage) -> str:
    again = f"dbench sweep --resume {name}"
    if results_dir:
        again += f" --results-dir {results_dir}"
    if storage:
        again += f" --storage {storage}"
    if address and not os.environ.get("RAY_ADDRESS"):
        again += f" --address {address}"
    return again


def _print_summary(summary, options, results_dir, storage) -> None:
    rows = summary.outcomes
    width = max((len(o.label) for o in rows), default=5)
    typer.echo("")
    typer.echo(f"{'trial':<{width}}  {'status':<10}  {'time':>7}  score")
    for o in rows:
        took = f"{o.trial_s:.1f}s" if o.trial_s is not None else "-"
        took = "earlier" if o.earlier else took
        tail = o.score or (o.error or "")
        typer.echo(f"{o.label:<{width}}  {o.status:<10}  {took:>7}  {tail}")
    counts = ", ".join(
        f"{summary.count(s)} {s.lower()}"
        for s in ("DONE", "SKIPPED", "ERROR", "UNFINISHED")
        if summary.count(s)
    )
    not_started = (summary.planned or len(rows)) - len(rows)
    if not_started > 0:
        counts += f", {not_started} not started"
    typer.echo(f"\n{summary.planned or len(rows)} trials: {counts}")
    ratio = summary.overhead_ratio
    if ratio is not None:
        typer.echo(
            f"time: Ray start {summary.startup_s:.1f}s; sweep {summary.wall_s:.1f}s wall vs "
            f"{summary.busy_s:.1f}s of trials / {summary.parallelism} in parallel = "
            f"{summary.busy_s / summary.parallelism:.1f}s ideal (overhead x{ratio:.2f})"
        )
    typer.echo(f"tune state: {summary.path}")
    if summary.count("ERROR") or summary.count("UNFINISHED") or not_started > 0:
        again = _resume_command(summary.name, options.address, results_dir, storage)
        unfinished = summary.count("UNFINISHED") + max(not_started, 0)
        if unfinished:
            raise Interrupted(f"continue with: {again}")
        typer.echo(f"some trials failed; continue with: {again}", err=True)
        raise typer.Exit(1)
