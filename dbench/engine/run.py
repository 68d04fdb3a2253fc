"""``run_one(config) -> RunRecord``: the only code path that trains and scores.

The CLI's ``run``, every Ray Tune trial of ``sweep`` and the Python API all call it.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np

from dbench.contracts import FitContext, HasParams
from dbench.engine.config import RunConfig
from dbench.engine.environment import environment, resolve_device
from dbench.engine.resolve import ResolvedRun, resolve_run, stream_rng
from dbench.engine.scoring import score_all
from dbench.engine.store import (
    SCHEMA_VERSION,
    RunRecord,
    artifacts_dir,
    ensure_writable,
    read_record,
    record_path,
    remove_empty,
    runs_dir,
    write_record,
)
from dbench.errors import UserError
from dbench.paths import results_root
from dbench.progress import quiet
from dbench.registry import MODELS


def run_one(
    config: RunConfig, report: Any = None, *, resolved: ResolvedRun | None = None
) -> RunRecord:
    """Train ``config.model`` on ``config.dataset``, score it, write and return the record.

    ``report(**metrics)`` receives training progress (Ray Tune passes its reporter here);
    ``resolved`` is ``resolve_run(config)`` when the caller already has it. When the run's
    record already exists it is returned as it is (``existing: True``) and nothing is trained,
    unless ``config.overwrite``: then the old record is kept under ``runs/replaced/``.
    """
    with quiet(not config.show_progress):
        return _run_one(config, report, resolved)


def _run_one(config: RunConfig, report: Any, resolved: ResolvedRun | None) -> RunRecord:
    started = time.perf_counter()
    results_dir = results_root(config.results_dir)
    run = resolved or resolve_run(config)
    device = resolve_device(config.device)
    existing = record_path(results_dir, run.run_id)
    if existing.is_file() and not config.overwrite:
        return {**read_record(existing), "path": str(existing), "existing": True}
    ensure_writable(results_dir)
    model = run.model

    workdir = artifacts_dir(results_dir, run.run_id)
    folders = (workdir, workdir.parent, runs_dir(results_dir), results_dir)
    created = [d for d in folders if not d.exists()]
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        remove_empty(*created)
        raise UserError(f"cannot create the run's artifact folder {workdir}: {exc}") from None
    try:
        fit_seconds, scored = _fit_and_score(config, run, device, workdir, report)
    except BaseException as exc:
        remove_empty(*created)  # a failed run leaves no empty folders (checkpoints stay)
        if isinstance(exc, KeyboardInterrupt):  # tell the CLI whether --resume has anything
            has_checkpoint = workdir.is_dir() and any(workdir.iterdir())
            exc.dbench_checkpoint = str(workdir) if has_checkpoint else None
        raise
    record: RunRecord = {
        "schema": SCHEMA_VERSION,
        "run_id": run.run_id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": {**config.to_dict(), "budget": run.budget.as_dict()},
        "identity": run.identity,
        "model": {
            "name": config.model,
            "kwargs": config.model_kwargs,
            "params": jsonable(model.get_params()) if isinstance(model, HasParams) else {},
            "origin": MODELS.entry(config.model).origin,
            "state_file": str((workdir / "model.state").relative_to(results_dir)),
        },
        "dataset": run.dataset_info,
        "budget": run.budget.as_dict(),
        "training": jsonable(getattr(model, "fit_info_", {})),
        "scores": scored.scores,
        "metrics": scored.meta,
        "representation": scored.representation,
        "timings": {
            "fit_s": fit_seconds,
            "metrics_s": scored.seconds,
            "total_s": time.perf_counter() - started,
        },
        "environment": environment(device, _entries(config, run)),
    }
    if existing.is_file():
        keep = existing.parent / "replaced" / f"{run.run_id}.{int(time.time())}.json"
        keep.parent.mkdir(exist_ok=True)
        existing.replace(keep)
    path = write_record(results_dir, record)
    return {**record, "path": str(path)}


def _entries(config: RunConfig, run: ResolvedRun) -> list[Any]:
    """The registry entries this run used (their plugin versions go into the record)."""
    from dbench.registry import DATASETS, METRICS

    return [
        MODELS.entry(config.model),
        DATASETS.entry(config.dataset),
        *(METRICS.entry(name) for name in run.metrics),
    ]


def _fit_and_score(config: RunConfig, run: ResolvedRun, device: str, workdir, report):
    ctx = FitContext(
        device=device,
        precision=run.precision or "fp32",
        budget=run.budget,
        workdir=workdir,
        resume=config.resume,
        show_progress=config.show_progress,
        report=report or (lambda **_: None),
    )
    if config.show_progress:
        print(
            f"fitting {config.model} on {config.dataset} ({run.dataset_info.get('source')}), "
            f"seed {config.seed}, device {device}",
            file=sys.stderr,
            flush=True,
        )
    fit_start = time.perf_counter()
    run.model.fit(run.sim, stream_rng(config.seed, "fit"), ctx)
    fit_seconds = time.perf_counter() - fit_start
    try:
        run.model.save(workdir / "model.state")
    except OSError as exc:  # a full disk: the atomic writer left no partial file
        raise UserError(f"cannot write model state {workdir / 'model.state'}: {exc}") from None
    scored = score_all(
        run.sim,
        run.model.encode,
        run.specs,
        config.metric_kwargs,
        config.seed,
        show_progress=config.show_progress,
    )
    return fit_seconds, scored


def jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars and arrays become numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
