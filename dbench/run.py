"""``run_one(config) -> RunRecord``: the only code path that trains and scores.

The CLI's ``run``, every Ray Tune trial of ``sweep`` and the Python API all call it.
"""

from __future__ import annotations

import hashlib
import inspect
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from dbench.api import Budget, FitContext, metric_info
from dbench.config import RunConfig, identity_hash
from dbench.errors import UserError
from dbench.paths import data_root, results_root
from dbench.registry import DATASETS, METRICS, MODELS
from dbench.representation import Representation
from dbench.results import (
    SCHEMA_VERSION,
    RunRecord,
    artifacts_dir,
    ensure_writable,
    write_record,
)


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """An independent generator per named stream, so adding a metric changes no other score."""
    key = int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, key])


def make_dataset(name: str, kwargs: dict[str, Any], data_dir: str | None = None) -> Any:
    """A dataset by name; ``data_dir`` is passed to datasets that read files."""
    cls = DATASETS.get(name)
    kwargs = dict(kwargs)
    if "data_dir" in inspect.signature(cls).parameters:
        kwargs.setdefault("data_dir", str(data_root(data_dir)))
    return DATASETS.create(name, **kwargs)


def default_metrics() -> list[str]:
    return [n for n in METRICS.names() if getattr(METRICS.get(n), "cheap", False)]


def check_metric_settings(name: str, fn: Any, settings: dict[str, Any]) -> None:
    """Catch bad metric settings before training, not after it (a typo must not cost a run).

    Checks what the signature tells: unknown names, a value of another type than the default
    (an int where the default is a float is fine), and counts that must stay positive.
    The metric itself still validates everything when it runs.
    """
    params = inspect.signature(fn).parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for key, value in settings.items():
        param = params.get(key)
        if param is None:
            if open_ended:
                continue
            raise UserError(f"{name}: unknown setting {key!r}")
        default = param.default
        if default is inspect.Parameter.empty or default is None:
            continue
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        ok_type = isinstance(value, type(default)) or (
            isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool)
        )
        if isinstance(value, bool) != isinstance(default, bool) or not ok_type:
            raise UserError(
                f"{name}: {key} must be of type {type(default).__name__} "
                f"(default {default!r}); got {value!r}"
            )
        if numeric and default > 0 and value <= 0:
            raise UserError(f"{name}: {key} must be a positive number; got {value!r}")


def resolve_device(device: str) -> str:
    if device != "auto":
        import torch

        try:
            torch.empty(0, device=device)
        except (RuntimeError, ValueError) as exc:
            raise UserError(f"device {device!r} is not usable here: {exc}") from None
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _environment(device: str) -> dict[str, Any]:
    import torch

    from dbench import __version__

    env = {
        "dbench_version": __version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": device,
    }
    if device.startswith("cuda"):
        env["device_name"] = torch.cuda.get_device_name(device)
    return env


def run_identity(config: RunConfig, budget: Budget, source: str, metrics: list[str]) -> dict:
    """What makes two runs the same run (and so share a run id)."""
    return {
        "model": config.model,
        "model_kwargs": config.model_kwargs,
        "dataset": config.dataset,
        "dataset_kwargs": config.dataset_kwargs,
        "source": source,
        "budget": budget.as_dict(),
        "metrics": metrics,
        "metric_kwargs": config.metric_kwargs,
        "seed": config.seed,
    }


def run_one(config: RunConfig, report: Any = None) -> RunRecord:
    """Train ``config.model`` on ``config.dataset``, score it, write and return the record.

    ``report(**metrics)`` receives training progress (Ray Tune passes its reporter here).
    """
    started = time.perf_counter()
    results_dir = results_root(config.results_dir)
    ensure_writable(results_dir)

    MODELS.entry(config.model), DATASETS.entry(config.dataset)  # unknown names fail first
    metrics = list(config.metrics) if config.metrics is not None else default_metrics()
    metric_fns = {name: METRICS.get(name) for name in metrics}  # unknown names fail now
    for name in config.metric_kwargs:
        if name not in metric_fns:
            raise UserError(f"settings given for metric {name!r}, which this run does not score")
    for name, fn in metric_fns.items():
        check_metric_settings(name, fn, config.metric_kwargs.get(name, {}))
    sim = make_dataset(config.dataset, config.dataset_kwargs, config.data_dir)
    model = MODELS.create(config.model, **config.model_kwargs)
    budget = config.budget.resolved(getattr(model, "default_budget", Budget()))
    device = resolve_device(config.device)

    dataset_info = sim.describe()
    identity = run_identity(config, budget, str(dataset_info.get("source")), metrics)
    run_id = f"{config.dataset}-{config.model}-{identity_hash(identity)}-s{config.seed}"
    workdir = artifacts_dir(results_dir, run_id)
    workdir.mkdir(parents=True, exist_ok=True)

    ctx = FitContext(
        device=device,
        budget=budget,
        workdir=workdir,
        resume=config.resume,
        show_progress=config.show_progress,
        report=report or (lambda **_: None),
    )
    say = _say if config.show_progress else (lambda _: None)
    say(
        f"fitting {config.model} on {config.dataset} ({dataset_info.get('source')}), "
        f"seed {config.seed}, device {device}"
    )
    fit_start = time.perf_counter()
    model.fit(sim, stream_rng(config.seed, "fit"), ctx)
    fit_seconds = time.perf_counter() - fit_start
    model.save(workdir / "model.state")

    rep = Representation(sim, model.encode, show_progress=config.show_progress)
    scores, metric_meta, metric_seconds = {}, {}, {}
    for name, fn in metric_fns.items():
        say(f"scoring {name}")
        t0 = time.perf_counter()
        scores[name] = fn(
            sim,
            rep,
            stream_rng(config.seed, f"metric:{name}"),
            **config.metric_kwargs.get(name, {}),
        )
        metric_seconds[name] = time.perf_counter() - t0
        metric_meta[name] = {
            **metric_info(fn),
            "settings": config.metric_kwargs.get(name, {}),
            "origin": METRICS.entry(name).origin,
        }

    record: RunRecord = {
        "schema": SCHEMA_VERSION,
        "run_id": run_id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": {**config.to_dict(), "budget": budget.as_dict()},
        "identity": identity,
        "model": {
            "name": config.model,
            "kwargs": config.model_kwargs,
            "params": _jsonable(model.get_params()) if hasattr(model, "get_params") else {},
            "origin": MODELS.entry(config.model).origin,
            "state_file": str((workdir / "model.state").relative_to(results_dir)),
        },
        "dataset": dataset_info,
        "budget": budget.as_dict(),
        "training": _jsonable(getattr(model, "fit_info_", {})),
        "scores": scores,
        "metrics": metric_meta,
        "representation": {"requested": rep.requested, "encoded": rep.encoded},
        "timings": {
            "fit_s": fit_seconds,
            "metrics_s": metric_seconds,
            "total_s": time.perf_counter() - started,
        },
        "environment": _environment(device),
    }
    path = write_record(results_dir, record)
    return {**record, "path": str(path)}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars and arrays become numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
