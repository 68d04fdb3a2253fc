"""Sweeps on Ray Tune: the driver side (one trial per grid point x seed, each one ``run_one``).

The driver hands Tune one ``grid_search`` over the sweep's :class:`~dbench.sweep.plan.TrialPlan`
s, so Tune owns scheduling and retries; :mod:`dbench.sweep.trial` is what each trial runs,
:mod:`dbench.sweep.ray_env` starts and sizes Ray, and :mod:`dbench.sweep.progress` prints a
line per trial event.

Run ids are deterministic, so a re-run trial rewrites the same record file, and a trial whose
record already exists is not run again: records are never duplicated or lost. The sweep's plan
and resources are written as JSON next to Tune's files (:data:`META_FILE`), so ``--resume``
needs only the sweep's name. Resume never reads Tune's state back: ``tuner.pkl``, the
experiment state and the trials' ``params.pkl`` are pickles, and the sweep folder is part of
the results folder, which is untrusted. It rebuilds the sweep from the plan instead: runs whose
record exists are done, the others start as a new Tune experiment in the same folder and
continue from their training checkpoints (loaded with ``weights_only=True``). Ray is imported
inside functions only: ``import dbench`` and ``dbench --help`` never load it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbench.errors import UserError
from dbench.sweep.plan import TrialPlan, plans_from_json, plans_to_json
from dbench.sweep.ray_env import (
    QuietLoggers,
    check_address,
    check_resources,
    quiet_ray_env,
    remove_session_dir,
    session_dir,
    start_ray,
)
from dbench.sweep.trial import final_metrics, finished_record, trainable

#: the sweep's own plan and resources (JSON), next to Tune's files
META_FILE = "dbench-sweep.json"
#: the layout of :data:`META_FILE` that ``--resume`` reads
PLAN_FORMAT = 1
#: a plan larger than this is refused unread (about 50,000 trials)
MAX_PLAN_BYTES = 64 << 20


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


def param_space(
    plans: list[TrialPlan],
    options: SweepOptions,
    todo: list[int] | None = None,
    *,
    resume: bool = False,
) -> dict[str, Any]:
    """Tune's param space: one grid point per plan to run (``todo``: their indices in
    ``plans``, all by default), plus what every trial needs to know. ``resume``: the runs
    continue from their training checkpoints."""
    from ray import tune

    opts = {
        "cpus": options.cpus_per_trial,
        "gpus": options.gpus_per_trial,
        "report_interval_s": options.report_interval_s,
    }
    todo = list(range(len(plans))) if todo is None else todo
    points = [
        {"index": k, "plan_index": i, "label": plans[i].label, "run": _run_dict(plans[i], resume)}
        for k, i in enumerate(todo)
    ]
    return {"trial": tune.grid_search(points), "dbench": opts}


def _run_dict(plan: TrialPlan, resume: bool) -> dict[str, Any]:
    d = plan.config.to_dict()
    d["resume"] = resume
    return d


def run_sweep(
    plans: list[TrialPlan] | None, options: SweepOptions, *, resume: bool = False
) -> SweepSummary:
    """Run (or, with ``resume``, continue) a sweep; Ray is shut down afterwards if we started it.

    Interrupting (Ctrl-C) stops the trials and returns a summary with UNFINISHED trials;
    ``resume=True`` with the same name continues from there: ``plans`` is then ignored, the
    sweep's own plan is read from :data:`META_FILE` (JSON; nothing Tune pickled is read).
    """
    if options.address:
        check_address(options.address)  # before the slow Ray import
    quiet_ray_env()
    import ray  # after quiet_ray_env: Ray reads the environment at import

    path = sweep_path(options)
    earlier: list[TrialOutcome] = []
    todo: list[int] | None = None
    if resume:
        plans, meta = read_plan(path)  # the sweep's own resources, not this command's defaults
        options.cpus_per_trial, options.gpus_per_trial = meta["cpus"], meta["gpus"]
        options.max_concurrent = meta["max_concurrent"]
        earlier, todo = split_finished(plans, options.gpus_per_trial)
    elif _exists(path):
        raise UserError(
            f"sweep {options.name!r} already exists at {path}; use --resume or a new --name"
        )
    plan_json = _plan_json(plans) if not resume else None  # before Ray: a bad value fails fast

    summary = SweepSummary(name=options.name, path=path, planned=len(plans) if plans else None)
    summary.outcomes = earlier
    if resume and not todo:  # every run has its record: nothing to start
        return summary
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
        tuner = _new_tuner(plans, options, path, plan_json, todo)
        t1, since = time.perf_counter(), time.time()
        grid = tuner.fit()
        summary.wall_s = time.perf_counter() - t1
        ran = outcomes(grid, since=int(since))
        summary.outcomes = sorted(earlier + ran, key=lambda o: o.index)
        summary.parallelism = min(summary.parallelism, max(len(ran), 1))
    finally:
        quiet.restore()
        if started_here and ray.is_initialized():
            ray.shutdown()
            remove_session_dir(session)
    return summary


def split_finished(
    plans: list[TrialPlan], gpus_per_trial: float
) -> tuple[list[TrialOutcome], list[int]]:
    """A resumed sweep's finished runs (their record exists with every score) as outcomes,
    and the indices of the others, which run again."""
    earlier, todo = [], []
    for i, plan in enumerate(plans):
        record = finished_record(plan.config, gpus_per_trial > 0)
        if record is None:
            todo.append(i)
            continue
        m = final_metrics(record, time.perf_counter(), skipped=False)
        earlier.append(
            TrialOutcome(
                label=plan.label,
                status="DONE",
                score=_score_text(m),
                run_id=record["run_id"],
                index=i,
                earlier=True,
            )
        )
    return earlier, todo


def _plan_json(plans: list[TrialPlan] | None) -> list[dict[str, Any]]:
    if not plans:
        raise UserError("the sweep is empty")
    trials = plans_to_json(plans)
    try:
        json.dumps(trials, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UserError(f"the sweep's settings must be JSON values: {exc}") from None
    return trials


def _new_tuner(
    plans: list[TrialPlan],
    options: SweepOptions,
    path: str,
    plan_json: list[dict[str, Any]] | None,
    todo: list[int] | None,
) -> Any:
    """A new Tune experiment over ``todo`` (all plans: a new sweep, whose plan is written
    first; some: a resumed one, whose runs continue from their checkpoints)."""
    from ray import tune

    from dbench.sweep.progress import ProgressPrinter

    if plan_json is not None:
        meta = {
            "format": PLAN_FORMAT,
            "cpus": options.cpus_per_trial,
            "gpus": options.gpus_per_trial,
            "max_concurrent": options.max_concurrent,
            "trials": plan_json,
        }
        write_meta(path, meta)
    tuner = tune.Tuner(
        trainable(),
        param_space=param_space(plans, options, todo, resume=plan_json is None),
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
    """The sweep's plan and resources, next to Tune's files, so --resume needs only the name."""
    fs, root = _filesystem(path)
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(f"{root}/{META_FILE}") as f:
        f.write(json.dumps(meta, allow_nan=False).encode())


def read_plan(path: str) -> tuple[list[TrialPlan], dict[str, Any]]:
    """The plans and resources :func:`write_meta` wrote, checked as untrusted input (one-line
    :class:`UserError` for anything else: a missing file, bad JSON, a sweep without a plan)."""
    fs, root = _filesystem(path)
    where = f"{path.rstrip('/')}/{META_FILE}"
    try:
        with fs.open_input_stream(f"{root}/{META_FILE}") as f:
            text = f.read(MAX_PLAN_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"no sweep to resume at {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read the sweep plan {where}: {exc}") from None
    if len(text) > MAX_PLAN_BYTES:
        raise UserError(f"sweep plan {where} is over {MAX_PLAN_BYTES >> 20} MiB")
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UserError(f"unreadable sweep plan {where}: {str(exc)[:200]}") from None
    if not isinstance(meta, dict) or meta.get("format") != PLAN_FORMAT or "trials" not in meta:
        raise UserError(
            f"{where}: no dbench plan (a sweep of an older dbench or another tool); Tune's "
            "own state is not read back: run the sweep again under a new --name (runs whose "
            "record exists are skipped)"
        )
    cpus, gpus, most = meta.get("cpus"), meta.get("gpus"), meta.get("max_concurrent")
    if not (_number(cpus) and cpus > 0 and _number(gpus) and gpus >= 0) or not (
        most is None or (isinstance(most, int) and not isinstance(most, bool) and most >= 1)
    ):
        raise UserError(f"sweep plan {where}: bad resources cpus={cpus!r}, gpus={gpus!r}")
    return plans_from_json(meta["trials"], where), meta


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _score_text(m: dict[str, Any]) -> str:
    return f"{m['score_name']}={m['score']:.4f}" if "score" in m else ""


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
        score = _score_text(m)
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
                index=point.get("plan_index", point.get("index", 0)),
                earlier=status != "UNFINISHED" and m.get("timestamp", since) < since,
            )
        )
    out.sort(key=lambda o: o.index)
    return out
