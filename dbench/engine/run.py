"""``run_one(config) -> RunRecord``: the only code path that trains and scores.

The CLI's ``run``, every Ray Tune trial of ``sweep`` and the Python API all call it.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from dbench.contracts import FitContext, HasParams
from dbench.engine.config import RunConfig
from dbench.engine.environment import environment, resolve_device
from dbench.engine.lock import run_lock
from dbench.engine.record import MACHINE_FIELDS, build, portable_path
from dbench.engine.resolve import ResolvedRun, resolve_run, stream_rng
from dbench.engine.scoring import score_all
from dbench.engine.store import (
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
from dbench.models.curves import CURVE_FILE
from dbench.paths import data_root, results_root
from dbench.progress import interactive, quiet, status
from dbench.registry import MODELS


def run_one(
    config: RunConfig,
    report: Any = None,
    *,
    resolved: ResolvedRun | None = None,
    progress: bool | None = None,
) -> RunRecord:
    """Train ``config.model`` on ``config.dataset``, score it, write and return the record.

    ``report(**metrics)`` receives training progress (Ray Tune passes its reporter here);
    ``resolved`` is ``resolve_run(config)`` when the caller already has it. When the run's
    record already exists it is returned as it is (``existing: True``) and nothing is trained,
    unless ``config.overwrite``: then the old record is kept under ``runs/replaced/``.
    ``progress``: bars and status lines on stderr; by default on in a terminal or a notebook,
    off elsewhere (a caller's :func:`dbench.progress.quiet` silences them whatever it says).
    """
    if progress is None:  # RunConfig(show_progress=...) still counts for one release
        legacy = getattr(config, "_show_progress", None)
        progress = interactive() if legacy is None else legacy
    with quiet(not progress):
        return _run_one(config, report, resolved)


def _run_one(config: RunConfig, report: Any, resolved: ResolvedRun | None) -> RunRecord:
    results_dir = results_root(config.results_dir)
    run = resolved or resolve_run(config)
    existing = record_path(results_dir, run.run_id)
    if existing.is_file() and not config.overwrite:
        return _existing(config, run, results_dir)
    ensure_writable(results_dir)
    device = resolve_device(config.device)  # an unusable device: before anything is created
    with run_lock(results_dir, run.run_id):
        if existing.is_file() and not config.overwrite:  # finished while we waited to lock
            return _existing(config, run, results_dir)
        return _train(config, run, results_dir, device, report)


def _existing(config: RunConfig, run: ResolvedRun, results_dir: Path) -> RunRecord:
    """The run exists: its record, after scoring any metric it lacks (or holds under another
    protocol) on the saved model. The same training is never trained twice for a metric."""
    from dbench.engine.rescore import missing_metrics, rescore

    record = read_record(record_path(results_dir, run.run_id))
    wanted = missing_metrics(record, run.specs, config.metric_kwargs)
    if wanted:
        record = rescore(
            results_dir,
            run.run_id,
            wanted,
            {name: config.metric_kwargs.get(name, {}) for name in wanted},
            data_dir=config.data_dir,
            missing_state=(
                f"run {run.run_id} exists but lacks {', '.join(wanted)} and its model state "
                "is not here to score them on; --overwrite trains it again"
            ),
        )
        record.pop("outcome", None)
    return {**record, "path": str(record_path(results_dir, run.run_id)), "existing": True}


def _train(
    config: RunConfig, run: ResolvedRun, results_dir: Path, device: str, report: Any
) -> RunRecord:
    started = time.perf_counter()
    existing = record_path(results_dir, run.run_id)
    replaced = existing.parent / "replaced"
    if existing.is_file() and replaced.exists() and not replaced.is_dir():
        # checked before anything changes: the old record must have a place to go
        raise UserError(f"cannot keep the old record: {replaced} is not a folder")
    model = run.model

    workdir = artifacts_dir(results_dir, run.run_id)
    if workdir.resolve() != artifacts_dir(Path(results_dir).resolve(), run.run_id):
        # a link in the results folder would make training write somewhere else
        raise UserError(f"refusing to train into {workdir}: a link leads outside it")
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
        kept = _without_checkpoint_debris(workdir)
        remove_empty(*created)  # a failed run leaves no empty folders (checkpoints stay)
        if isinstance(exc, KeyboardInterrupt):  # tell the CLI exactly what --resume has
            exc.dbench_checkpoint = str(workdir / "checkpoint.pt") if kept else None
        raise
    # asdict, not to_dict: records keep metric settings by metric (config.metric_kwargs)
    given = {k: v for k, v in asdict(config).items() if k not in MACHINE_FIELDS}
    record = build(
        run_id=run.run_id,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        origin="trained",
        config={**given, "metrics": run.metrics, "budget": run.budget.as_dict()},
        identity=run.identity.model_dump(),
        model={
            "name": config.model,
            "kwargs": config.model_kwargs,
            "params": jsonable(model.get_params()) if isinstance(model, HasParams) else {},
            "origin": MODELS.entry(config.model).origin,
            "state_file": str((workdir / "model.state").relative_to(results_dir)),
        },
        dataset={
            **run.dataset_info,
            "path": portable_path(run.dataset_info.get("path"), data_root(config.data_dir)),
        },
        budget=run.budget.as_dict(),
        training=jsonable(
            {**getattr(model, "fit_info_", {}), "precision_choice": run.precision_choice}
        ),
        scores=scored.scores,
        metrics=scored.meta,
        representation=scored.representation,
        timings={
            "fit_s": fit_seconds,
            "metrics_s": scored.seconds,
            "total_s": time.perf_counter() - started,
        },
        environment=environment(device, _entries(config, run)),
    )
    if "path" in record["dataset"] and record["dataset"]["path"] is None:
        del record["dataset"]["path"]
    if existing.is_file():
        keep = replaced / f"{run.run_id}.{int(time.time())}.json"
        replaced.mkdir(exist_ok=True)
        existing.replace(keep)
    try:
        path = write_record(results_dir, record)
    except UserError as exc:  # a full disk: no record means no model state without one
        (workdir / "model.state").unlink(missing_ok=True)
        remove_empty(runs_dir(results_dir))
        kept = " (its training checkpoint is kept: --resume)" if has_checkpoint(
            results_dir, run.run_id) else ""  # fmt: skip
        raise UserError(f"{exc}{kept}") from None
    return {**record, "path": str(path)}


def _without_checkpoint_debris(workdir: Path) -> bool:
    """After a failed or interrupted run: True when a training checkpoint is kept; without one,
    the curve written so far is removed too (``--resume`` would start from step 0 anyway)."""
    from dbench.models.training import CHECKPOINT  # torch: only once a run has failed

    if (workdir / CHECKPOINT).is_file():
        return True
    if workdir.is_dir() and {p.name for p in workdir.iterdir()} <= {CURVE_FILE}:
        (workdir / CURVE_FILE).unlink(missing_ok=True)
    return False


def has_checkpoint(results_dir: Path, run_id: str) -> bool:
    """Whether ``--resume`` has anything to continue from for this run."""
    from dbench.models.training import CHECKPOINT

    return (artifacts_dir(results_dir, run_id) / CHECKPOINT).is_file()


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
        report=report or (lambda **_: None),
    )
    status(
        f"fitting {config.model} on {config.dataset} ({run.dataset_info.get('source')}), "
        f"seed {config.seed}, device {device}"
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
