"""One sweep trial, in a Ray worker process: one :func:`~dbench.engine.run.run_one` call.

A trial pins torch to its CPUs, resolves its run (:func:`~dbench.engine.resolve.resolve_run`,
the one place that names a run), and skips the run when its record already exists with every
score. Otherwise it calls ``run_one`` with a ``report`` callback (:class:`Forwarder`) that
passes training progress on to ``ray.tune.report`` and attaches a small Tune checkpoint
pointing at the run's artifact folder whenever the model wrote a new training checkpoint
there; at the end it reports the scores.

Everything a trial needs (its RunConfig, its resources) lives in the trial's config, laid out
by :func:`dbench.sweep.driver.param_space`. A resumed sweep is a new Tune experiment (Tune's
pickled state is never read back) whose RunConfigs say ``resume``: the run continues from the
training checkpoint in its artifact folder. Ray is imported inside functions only.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from dbench.errors import UserError

#: the file in a trial's Tune checkpoint that points at the run's artifact folder
POINTER = "dbench-checkpoint.json"


def pin_threads(cpus: float) -> None:
    """torch (and OpenMP) use as many threads as the trial has CPUs."""
    import torch

    threads = max(1, int(cpus))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def trial_device(device: str, has_gpu: bool) -> str:
    """What a trial's ``device`` means: "auto" is only what Ray gave the trial (a GPU or none),
    never any GPU of the machine. The driver names runs the same way (their ids depend on it)."""
    from dbench.models.precision import auto_device

    return auto_device(has_gpu) if device == "auto" else device


def existing_record(results_dir: Path, resolved: Any) -> dict | None:
    """The finished record of this resolved run: already there with every metric the run
    asks for, under the protocol it asks for (a run lacking one is not finished: its trial
    scores the rest on the saved model, see ``run_one``)."""
    from dbench.engine.rescore import missing_metrics
    from dbench.engine.store import read_record, record_path

    path = record_path(results_dir, resolved.run_id)
    if not path.is_file():
        return None
    try:
        record = read_record(path)
    except UserError:
        return None  # unreadable: run again and overwrite it
    missing = missing_metrics(record, resolved.specs, resolved.config.metric_kwargs)
    return None if missing else record


def finished_record(config: Any, has_gpu: bool) -> dict | None:
    """The record of ``config``'s run if it is finished, for the driver of a resumed sweep;
    the run id comes from ``resolve_run`` on the RunConfig the trial would run."""
    from dbench.engine.config import RunConfig
    from dbench.engine.resolve import resolve_run
    from dbench.paths import results_root
    from dbench.progress import quiet

    # rebuilt from its keywords (dataclasses.replace would pass the deprecated metric_kwargs=)
    device = trial_device(config.device, has_gpu)
    config = RunConfig(**{**config.to_dict(), "device": device})
    try:
        with quiet():
            resolved = resolve_run(config)
    except Exception:  # e.g. data only on the workers: the trial resolves it, or says why not
        return None
    return existing_record(results_root(config.results_dir), resolved)


def final_metrics(record: dict, started: float, skipped: bool) -> dict[str, Any]:
    """What a trial reports last: run id, record path, timings, every score, the headline."""
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


class Forwarder:
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
            (Path(tmp) / POINTER).write_text(json.dumps(pointer))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def run_trial(config: dict[str, Any]) -> None:
    """One Tune trial: one ``run_one``; its record lands in the results root as usual.

    ``config``: ``{"run": RunConfig fields, "dbench": {"cpus", "gpus", "report_interval_s"}}``.
    """
    import ray
    from ray import tune

    from dbench.engine.config import RunConfig
    from dbench.engine.resolve import resolve_run
    from dbench.engine.run import run_one
    from dbench.engine.store import artifacts_dir
    from dbench.paths import results_root

    started = time.perf_counter()
    opts = config["dbench"]
    pin_threads(opts["cpus"])
    run_config = RunConfig(**config["run"])
    run_config.device = trial_device(run_config.device, bool(ray.get_gpu_ids()))
    results_dir = results_root(run_config.results_dir)
    resolved = resolve_run(run_config)
    done = existing_record(results_dir, resolved)
    if done is not None:
        tune.report(final_metrics(done, started, skipped=True))
        return
    # A resumed sweep, or a Tune checkpoint (this trial failed and Tune retries it in this
    # session): continue from the training checkpoint in the run's artifact folder.
    run_config.resume = run_config.resume or tune.get_checkpoint() is not None
    workdir = artifacts_dir(results_dir, resolved.run_id)
    forward = Forwarder(workdir, resolved.run_id, opts["report_interval_s"])
    record = run_one(run_config, report=forward, resolved=resolved)
    tune.report(final_metrics(record, started, skipped=False))


def trial_resources(config: dict[str, Any]) -> Any:
    """The trial's placement: its CPUs and, when asked for, its (fraction of a) GPU."""
    from ray import tune

    opts = config["dbench"]
    bundle = {"CPU": opts["cpus"]}
    if opts["gpus"]:
        bundle["GPU"] = opts["gpus"]
    return tune.PlacementGroupFactory([bundle])


def _flatten(config: dict[str, Any]) -> dict[str, Any]:
    """Tune hands the grid point under "trial"; the trial function wants run + dbench."""
    return {"run": config["trial"]["run"], "dbench": config["dbench"], **config["trial"]}


def _entry(config: dict[str, Any]) -> None:
    run_trial(_flatten(config))


def _entry_resources(config: dict[str, Any]) -> Any:
    return trial_resources(_flatten(config))


def trainable() -> Any:
    """What Tune runs: :func:`run_trial` with per-trial resources."""
    from ray import tune

    return tune.with_resources(_entry, _entry_resources)
