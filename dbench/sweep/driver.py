"""Sweeps on Ray Tune: one trial per (grid point x seed), each calling :func:`dbench.engine.run.run_one`.

Ray is imported inside functions only: ``import dbench`` and ``dbench --help`` never load it.

How the pieces fit:

* The driver expands the sweep into :class:`~dbench.sweep.plan.TrialPlan` s and hands Tune one
  ``grid_search`` over them, so Tune owns scheduling, retries, snapshots and resume.
* A trial (:func:`_trial`) pins torch to its CPUs, calls ``run_one`` with a ``report``
  callback that forwards training progress to ``ray.tune.report`` (throttled: every report
  is a round trip through the driver), attaches a small Tune checkpoint pointing at the run's
  artifact folder whenever the model writes a new training checkpoint there, and finally
  reports the scores.
* Everything a trial needs (its RunConfig, its resources) lives in the trial's config, so
  ``Tuner.restore`` needs nothing but the experiment folder.
* Run ids are deterministic, so a re-run trial rewrites the same record file, and a trial
  whose record already exists is not run again: records are never duplicated or lost.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbench.errors import UserError
from dbench.sweep.plan import TrialPlan

#: Ray's defaults would phone home, write ~/.ray/auth_token and print a banner per trial.
RAY_QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_AIR_NEW_OUTPUT": "0",
    # frequent small checkpoints force snapshots; that is intended, not worth a warning
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}
_POINTER = "dbench-checkpoint.json"


def ray_temp_dir() -> Path:
    """Ray's session files: ``$DBENCH_RAY_TMPDIR`` or a short per-user folder in the temp dir.

    Short on purpose: Ray puts Unix sockets in it, and socket paths are limited to ~107 bytes.
    """
    override = os.environ.get("DBENCH_RAY_TMPDIR")
    if override:
        return Path(override)
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"dbench-ray-{user}"


def quiet_ray_env() -> None:
    for key, value in RAY_QUIET_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("RAY_TMPDIR", str(ray_temp_dir()))


@dataclass
class SweepOptions:
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


# -- the trial (runs in a Ray worker process) -------------------------------------------------


def _pin_threads(cpus: float) -> None:
    import torch

    threads = max(1, int(cpus))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def expected_run_id(config: Any) -> str:
    """The run id ``run_one`` will give this config (same identity, same hash)."""
    from dbench.contracts import Budget
    from dbench.engine.config import identity_hash
    from dbench.engine.run import default_metrics, make_dataset, run_identity
    from dbench.registry import MODELS

    sim = make_dataset(config.dataset, config.dataset_kwargs, config.data_dir)
    model = MODELS.create(config.model, **config.model_kwargs)
    budget = config.budget.resolved(getattr(model, "default_budget", Budget()))
    metrics = list(config.metrics) if config.metrics is not None else default_metrics()
    source = str(sim.describe().get("source"))
    identity = run_identity(config, budget, source, metrics)
    return f"{config.dataset}-{config.model}-{identity_hash(identity)}-s{config.seed}"


def _existing_record(results_dir: Path, run_id: str) -> dict | None:
    """The finished record of this run, if one is already there with every score."""
    from dbench.engine.store import read_record, record_path

    path = record_path(results_dir, run_id)
    if not path.is_file():
        return None
    try:
        record = read_record(path)
    except UserError:
        return None  # unreadable: run again and overwrite it
    wanted = record.get("identity", {}).get("metrics", [])
    return record if all(m in record.get("scores", {}) for m in wanted) else None


def _final_metrics(record: dict, started: float, skipped: bool) -> dict[str, Any]:
    scores = record.get("scores", {})
    flat = {f"{m}.{k}": v for m, s in scores.items() for k, v in s.items()}
    out: dict[str, Any] = {
        "run_id": record["run_id"],
        "record": str(record.get("path", "")),
        "skipped": skipped,
        "trial_s": time.perf_counter() - started,
        "fit_s": record.get("timings", {}).get("fit_s"),
        **flat,
    }
    for name, meta in record.get("metrics", {}).items():  # headline of the first metric
        primary = meta.get("primary")
        if primary and primary in scores.get(name, {}):
            out["score"] = scores[name][primary]
            out["score_name"] = f"{name}.{primary}"
            break
    return out


def _newest_mtime(folder: Path) -> float:
    try:
        return max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)
    except OSError:
        return 0.0


class _Forwarder:
    """``report(**metrics)`` for run_one: progress to Tune, checkpoints when the model saved one.

    Throttled to one report per ``interval`` seconds (the latest values win) because each
    ``tune.report`` blocks until the driver has taken the result.
    """

    def __init__(self, workdir: Path, run_id: str, interval: float):
        self.workdir, self.run_id, self.interval = workdir, run_id, interval
        self.last = 0.0
        self.checkpointed = _newest_mtime(workdir)

    def __call__(self, **metrics: Any) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        from ray import tune

        metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
        newest = _newest_mtime(self.workdir)
        if newest <= self.checkpointed:
            tune.report(metrics)
            return
        self.checkpointed = newest
        with tempfile.TemporaryDirectory(prefix="dbench-ckpt-") as tmp:
            pointer = {"run_id": self.run_id, "workdir": str(self.workdir)}
            (Path(tmp) / _POINTER).write_text(json.dumps(pointer))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def _trial(config: dict[str, Any]) -> None:
    """One Tune trial: one ``run_one``; its record lands in the results root as usual."""
    import ray
    from ray import tune

    from dbench.engine.config import RunConfig
    from dbench.engine.run import run_one
    from dbench.engine.store import artifacts_dir

    started = time.perf_counter()
    opts = config["dbench"]
    _pin_threads(opts["cpus"])
    run = RunConfig(**config["run"])
    if run.device == "auto":  # only what Ray gave this trial; "auto" would grab any GPU
        run.device = "cuda" if ray.get_gpu_ids() else "cpu"
    results_dir = Path(run.results_dir)
    run_id = expected_run_id(run)
    done = _existing_record(results_dir, run_id)
    if done is not None:
        tune.report(_final_metrics(done, started, skipped=True))
        return
    # A Tune checkpoint means this trial ran before: continue its training checkpoint.
    run.resume = tune.get_checkpoint() is not None
    forward = _Forwarder(artifacts_dir(results_dir, run_id), run_id, opts["report_interval_s"])
    record = run_one(run, report=forward)
    if record["run_id"] != run_id:  # run_one's identity changed; the skip check needs fixing
        raise RuntimeError(f"dbench.sweep.driver.expected_run_id is stale: {run_id} != {record['run_id']}")
    tune.report(_final_metrics(record, started, skipped=False))


def _resources(config: dict[str, Any]) -> Any:
    from ray import tune

    opts = config["dbench"]
    bundle = {"CPU": opts["cpus"]}
    if opts["gpus"]:
        bundle["GPU"] = opts["gpus"]
    return tune.PlacementGroupFactory([bundle])


# -- the driver -------------------------------------------------------------------------------


def check_address(address: str) -> None:
    """Fail in seconds, not after Ray's long connection retries, when nothing listens there."""
    import socket

    if "://" in address or address == "auto":
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            pass
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot reach a Ray cluster at {address}: {exc}") from None


def start_ray(options: SweepOptions) -> bool:
    """Connect to ``options.address`` or start a private local Ray; True if we started it.

    Ray's own log lines stay out of the terminal (``log_to_driver=False``, level ERROR); the
    trials' output is in their folders under the sweep's storage.
    """
    import logging

    import ray

    if ray.is_initialized():  # the caller's Ray (tests, notebooks): use it, leave it running
        return False
    common = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    if options.address:
        check_address(options.address)
        try:
            ray.init(address=options.address, **common)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
            raise UserError(f"cannot connect to Ray at {options.address}: {exc}") from None
        return True
    temp = ray_temp_dir()
    temp.mkdir(parents=True, exist_ok=True)
    ray.init(
        address="local",  # never attach to a stray cluster on this machine
        num_cpus=options.num_cpus,
        include_dashboard=False,
        _temp_dir=str(temp),
        **common,
    )
    return True


def check_resources(options: SweepOptions) -> int:
    """Fail clearly when no trial could ever be placed; return how many can run at once."""
    import ray

    have = ray.cluster_resources()
    cpus, gpus = have.get("CPU", 0), have.get("GPU", 0)
    if options.gpus_per_trial and not gpus:
        raise UserError(
            f"--gpus-per-trial {options.gpus_per_trial} but the Ray cluster has no GPUs "
            f"(CPU {cpus:g}); drop the flag or connect to a cluster with GPUs"
        )
    if options.gpus_per_trial > gpus:
        raise UserError(f"--gpus-per-trial {options.gpus_per_trial} > GPUs in cluster ({gpus:g})")
    if options.cpus_per_trial > cpus:
        raise UserError(f"--cpus-per-trial {options.cpus_per_trial:g} > CPUs in cluster ({cpus:g})")
    fits = int(cpus // options.cpus_per_trial) if options.cpus_per_trial else 10**6
    if options.gpus_per_trial:
        fits = min(fits, int(gpus // options.gpus_per_trial))
    return max(1, min(fits, options.max_concurrent or fits))


def sweep_path(options: SweepOptions) -> str:
    return f"{options.storage.rstrip('/')}/{options.name}"


def _param_space(plans: list[TrialPlan], options: SweepOptions) -> dict[str, Any]:
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


def _flatten_trial_config(config: dict[str, Any]) -> dict[str, Any]:
    """Tune hands the grid point under "trial"; the trial function wants run + dbench."""
    return {"run": config["trial"]["run"], "dbench": config["dbench"], **config["trial"]}


def _trial_entry(config: dict[str, Any]) -> None:
    _trial(_flatten_trial_config(config))


def _entry_resources(config: dict[str, Any]) -> Any:
    return _resources(_flatten_trial_config(config))


def _trainable() -> Any:
    from ray import tune

    return tune.with_resources(_trial_entry, _entry_resources)


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
        meta = _read_meta(path)  # the sweep's own resources, not this command's defaults
        options.cpus_per_trial, options.gpus_per_trial = meta["cpus"], meta["gpus"]
        options.max_concurrent = meta.get("max_concurrent")
    elif _exists(path):
        raise UserError(
            f"sweep {options.name!r} already exists at {path}; use --resume or a new --name"
        )

    summary = SweepSummary(name=options.name, path=path, planned=len(plans) if plans else None)
    quiet = _QuietLoggers()  # Tune's INFO/WARNING lines would interleave with our table
    started_here = not ray.is_initialized()
    session = None
    t0 = time.perf_counter()
    try:
        start_ray(options)
        if started_here and not options.address:
            session = _session_dir()
        summary.startup_s = time.perf_counter() - t0
        # Before any sweep state is written: a sweep that cannot be placed is a user error.
        summary.parallelism = check_resources(options)
        tuner = _restore(path) if resume else _new_tuner(plans, options, path)
        t1, since = time.perf_counter(), time.time()
        grid = tuner.fit()
        summary.wall_s = time.perf_counter() - t1
        summary.outcomes = _outcomes(grid, since=int(since))
        summary.parallelism = min(summary.parallelism, max(len(summary.outcomes), 1))
    finally:
        quiet.restore()
        if started_here and ray.is_initialized():
            ray.shutdown()
            _remove_session_dir(session)
    return summary


class _QuietLoggers:
    """Tune and Train loggers at ERROR for the duration of a sweep, then as they were."""

    NAMES = ("ray.tune", "ray.train", "ray.air")

    def __init__(self) -> None:
        import logging

        self.levels = {n: logging.getLogger(n).level for n in self.NAMES}
        for name in self.NAMES:
            logging.getLogger(name).setLevel(logging.ERROR)

    def restore(self) -> None:
        import logging

        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)


def _restore(path: str) -> Any:
    from ray import tune

    return tune.Tuner.restore(path, trainable=_trainable(), resume_errored=True)


def _new_tuner(plans: list[TrialPlan] | None, options: SweepOptions, path: str) -> Any:
    from ray import tune

    from dbench.sweep.progress import ProgressPrinter

    if not plans:
        raise UserError("the sweep is empty")
    tuner = tune.Tuner(
        _trainable(),
        param_space=_param_space(plans, options),
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
    _write_meta(path, meta)
    return tuner


def _trial_dirname(trial: Any) -> str:
    """``<trial id>-betavae_beta=4_seed=0`` instead of Tune's flattened-config names."""
    label = trial.config.get("trial", {}).get("label", "")
    slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_")[:80]
    return f"{trial.trial_id}-{slug}" if slug else trial.trial_id


def _remove_session_dir(session_dir: str | None) -> None:
    """Our private Ray session's logs (kept with DBENCH_KEEP_RAY_LOGS=1 for debugging)."""
    if session_dir and not os.environ.get("DBENCH_KEEP_RAY_LOGS"):
        shutil.rmtree(session_dir, ignore_errors=True)


def _session_dir() -> str | None:
    try:  # no public API for it; only used to tidy up after ourselves
        from ray._private import worker

        return worker._global_node.get_session_dir_path()
    except Exception:
        return None


def _exists(path: str) -> bool:
    if "://" in path:
        from ray import tune

        return tune.Tuner.can_restore(path)
    return Path(path).exists()


_META = "dbench-sweep.json"


def _write_meta(path: str, meta: dict[str, Any]) -> None:
    """Resources of the sweep, next to Tune's snapshot, so --resume needs only the name."""
    import pyarrow.fs

    fs, root = pyarrow.fs.FileSystem.from_uri(path if "://" in path else str(Path(path).resolve()))
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(f"{root}/{_META}") as f:
        f.write(json.dumps(meta).encode())


def _read_meta(path: str) -> dict[str, Any]:
    import pyarrow.fs

    fs, root = pyarrow.fs.FileSystem.from_uri(path if "://" in path else str(Path(path).resolve()))
    try:
        with fs.open_input_stream(f"{root}/{_META}") as f:
            return json.loads(f.read())
    except (OSError, ValueError):  # a sweep from another tool: Tune's defaults
        return {"cpus": 1, "gpus": 0}


def _outcomes(grid: Any, since: float) -> list[TrialOutcome]:
    """One outcome per trial Tune created, in plan order; ``since``: this session's start."""
    outcomes = []
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
        outcomes.append(
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
    outcomes.sort(key=lambda o: o.index)
    return outcomes
