"""Sweeps on Ray Tune: the driver side (one trial per grid point x seed, each one ``run_one``).

The driver hands Tune one ``grid_search`` over the sweep's :class:`~dbench.sweep.plan.TrialPlan`
s, so Tune owns scheduling, retries, snapshots and resume; :mod:`dbench.sweep.trial` is what
each trial runs, :mod:`dbench.sweep.ray_env` starts and sizes Ray, and
:mod:`dbench.sweep.progress` prints a line per trial event.

Run ids are deterministic, so a re-run trial rewrites the same record file, and a trial whose
record already exists is not run again: records are never duplicated or lost. The sweep's
resources are written next to Tune's snapshot (:data:`META_FILE`), so ``--resume`` needs only
the sweep's name. Ray is imported inside functions only: ``import dbench`` and
``dbench --help`` never load it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbench.errors import UserError
from dbench.sweep.plan import TrialPlan
from dbench.sweep.ray_env import (
    QuietLoggers,
    check_address,
    check_resources,
    quiet_ray_env,
    remove_session_dir,
    session_dir,
    start_ray,
)
from dbench.sweep.trial import trainable

#: the sweep's own metadata (its resources), next to Tune's snapshot
META_FILE = "dbench-sweep.json"


@dataclass
class SweepOptions:
    """How to run a sweep (not what it runs: that is the list of plans)."""

    name: str
    storage: str  # absolute path or URI (s3://, gs://, ...)
    cpus_per_trial: float = 1
    gpus_per_trial: float = 0
    address: str | None = None
    num_cpus: int | None = None  # only when starting a local Ray
    max_concurrent: int | None = None
    report_interval_s: float = 2.0
    max_failures: int = 0


@dataclass
class TrialOutcome:
    """How one trial ended, as the summary table shows it."""

    label: str
    status: str  # DONE, SKIPPED (record existed), ERROR, UNFINISHED
    score: str = ""
    run_id: str | None = None
    trial_s: float | None = None
    error: str | None = None
    index: int = 0
    earlier: bool = False  # finished in an earlier session of a resumed sweep


@dataclass
class SweepSummary:
    """Every trial's outcome and where the time went."""

    name: str
    path: str
    outcomes: list[TrialOutcome] = field(default_factory=list)
    wall_s: float = 0.0  # Tuner.fit only
    startup_s: float = 0.0  # ray.init
    parallelism: int = 1

    planned: int | None = None  # trials in the plan (Tune creates them lazily)

    @property
    def busy_s(self) -> float:
        """Trial time spent in this session (trials finished before a resume don't count)."""
        ran = [o for o in self.outcomes if o.status in ("DONE", "SKIPPED") and not o.earlier]
        return sum(o.trial_s or 0.0 for o in ran)

    @property
    def overhead_ratio(self) -> float | None:
        """Sweep wall time over the ideal (sum of trial times / parallelism); 1.0 is perfect."""
        ideal = self.busy_s / max(self.parallelism, 1)
        return self.wall_s / ideal if ideal > 0 else None

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def sweep_path(options: SweepOptions) -> str:
    """Where Tune keeps the sweep's state: ``STORAGE/NAME``."""
    return f"{options.storage.rstrip('/')}/{options.name}"


def param_space(plans: list[TrialPlan], options: SweepOptions) -> dict[str, Any]:
    """Tune's param space: one grid point per plan, plus what every trial needs to know."""
    from ray import tune

    opts = {
        "cpus": options.cpus_per_trial,
        "gpus": options.gpus_per_trial,
        "report_interval_s": options.report_interval_s,
    }
    points = [{"index": i, "label": p.label, "run": _run_dict(p)} for i, p in enumerate(plans)]
    return {"trial": tune.grid_search(points), "dbench": opts}


def _run_dict(plan: TrialPlan) -> dict[str, Any]:
    d = plan.config.to_dict()
    d["resume"] = False
    return d


def run_sweep(
    plans: list[TrialPlan] | None, options: SweepOptions, *, resume: bool = False
) -> SweepSummary:
    """Run (or, with ``resume``, continue) a sweep; Ray is shut down afterwards if we started it.

    Interrupting (Ctrl-C) stops the trials, keeps Tune's snapshot and returns a summary with
    UNFINISHED trials; ``resume=True`` with the same name continues from there.
    """
    if options.address:
        check_address(options.address)  # before the slow Ray import
    quiet_ray_env()
    import ray  # after quiet_ray_env: Ray reads the environment at import
    from ray import tune

    path = sweep_path(options)
    if resume:
        if not tune.Tuner.can_restore(path):
            raise UserError(f"no sweep to resume at {path}")
        meta = read_meta(path)  # the sweep's own resources, not this command's defaults
        options.cpus_per_trial, options.gpus_per_trial = meta["cpus"], meta["gpus"]
        options.max_concurrent = meta.get("max_concurrent")
    elif _exists(path):
        raise UserError(
            f"sweep {options.name!r} already exists at {path}; use --resume or a new --name"
        )

    summary = SweepSummary(name=options.name, path=path, planned=len(plans) if plans else None)
    quiet = QuietLoggers()  # Tune's INFO/WARNING lines would interleave with our table
    started_here = not ray.is_initialized()
    session = None
    t0 = time.perf_counter()
    try:
        start_ray(options.address, options.num_cpus)
        if started_here and not options.address:
            session = session_dir()
        summary.startup_s = time.perf_counter() - t0
        # Before any sweep state is written: a sweep that cannot be placed is a user error.
        summary.parallelism = check_resources(
            options.cpus_per_trial, options.gpus_per_trial, options.max_concurrent
        )
        tuner = _restore(path) if resume else _new_tuner(plans, options, path)
        t1, since = time.perf_counter(), time.time()
        grid = tuner.fit()
        summary.wall_s = time.perf_counter() - t1
        summary.outcomes = outcomes(grid, since=int(since))
        summary.parallelism = min(summary.parallelism, max(len(summary.outcomes), 1))
    finally:
        quiet.restore()
        if started_here and ray.is_initialized():
            ray.shutdown()
            remove_session_dir(session)
    return summary


def _restore(path: str) -> Any:
    from ray import tune

    return tune.Tuner.restore(path, trainable=trainable(), resume_errored=True)


def _new_tuner(plans: list[TrialPlan] | None, options: SweepOptions, path: str) -> Any:
    from ray import tune

    from dbench.sweep.progress import ProgressPrinter

    if not plans:
        raise UserError("the sweep is empty")
    tuner = tune.Tuner(
        trainable(),
        param_space=param_space(plans, options),
        tune_config=tune.TuneConfig(
            reuse_actors=True,  # ~2 s saved per trial: one worker runs trial after trial
            max_concurrent_trials=options.max_concurrent,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=options.name,
            storage_path=options.storage,
            verbose=0,
            log_to_file=True,  # trials' stdout/stderr into their folders, not the terminal
            callbacks=[ProgressPrinter()],
            # Pointer checkpoints are tiny; keeping two halves the snapshots Tune forces.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=options.max_failures),
        ),
    )
    meta = {
        "cpus": options.cpus_per_trial,
        "gpus": options.gpus_per_trial,
        "max_concurrent": options.max_concurrent,
    }
    write_meta(path, meta)
    return tuner


def _trial_dirname(trial: Any) -> str:
    """``<trial id>-betavae_beta=4_seed=0`` instead of Tune's flattened-config names."""
    label = trial.config.get("trial", {}).get("label", "")
    slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_")[:80]
    return f"{trial.trial_id}-{slug}" if slug else trial.trial_id


def _exists(path: str) -> bool:
    if "://" in path:
        from ray import tune

        return tune.Tuner.can_restore(path)
    return Path(path).exists()


def _filesystem(path: str) -> tuple[Any, str]:
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(path if "://" in path else str(Path(path).resolve()))


def write_meta(path: str, meta: dict[str, Any]) -> None:
    """Resources of the sweep, next to Tune's snapshot, so --resume needs only the name."""
    fs, root = _filesystem(path)
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(f"{root}/{META_FILE}") as f:
        f.write(json.dumps(meta).encode())


def read_meta(path: str) -> dict[str, Any]:
    """What :func:`write_meta` wrote; Tune's defaults for a sweep from another tool."""
    fs, root = _filesystem(path)
    try:
        with fs.open_input_stream(f"{root}/{META_FILE}") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return {"cpus": 1, "gpus": 0}


def outcomes(grid: Any, since: float) -> list[TrialOutcome]:
    """One outcome per trial Tune created, in plan order; ``since``: this session's start."""
    out = []
    for result in grid:
        point = (result.config or {}).get("trial", {})
        m = result.metrics or {}
        if result.error is not None:
            status = "ERROR"
        elif "run_id" in m:
            status = "SKIPPED" if m.get("skipped") else "DONE"
        else:
            status = "UNFINISHED"
        score = f"{m['score_name']}={m['score']:.4f}" if "score" in m else ""
        error = None
        if result.error is not None:
            error = str(result.error).strip().splitlines()[-1][:200]
        out.append(
            TrialOutcome(
                label=point.get("label", "?"),
                status=status,
                score=score,
                run_id=m.get("run_id"),
                trial_s=m.get("trial_s"),
                error=error,
                index=point.get("index", 0),
                earlier=status != "UNFINISHED" and m.get("timestamp", since) < since,
            )
        )
    out.sort(key=lambda o: o.index)
    return out
