"""Score a saved run with more (or re-set) metrics, without training again.

The model is rebuilt from the record (registry name, kwargs, saved state), the dataset from
its name and kwargs, and every named metric is scored on one shared
:class:`~dbench.engine.representation.Representation` with the run's own per-metric random streams
(:func:`dbench.engine.run.stream_rng`), so rescoring a metric the run already has, with the same
settings, reproduces its value. Results merge into the record, which is rewritten atomically.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dbench.contracts import metric_info
from dbench.engine.representation import Representation
from dbench.engine.store import RunRecord, find_record, write_record
from dbench.errors import UserError
from dbench.registry import METRICS, MODELS


def _check_same_data(record: RunRecord, now: dict[str, Any]) -> None:
    """Scores of one record must come from one dataset source (SPEC.md: records say which)."""
    before = record.get("dataset", {})
    for key in ("source", "checksum"):
        if before.get(key) != now.get(key):
            raise UserError(
                f"run {record['run_id']} was scored on dataset {key} {before.get(key)!r}, "
                f"but {now.get(key)!r} is what loads now; give the same data (--data-dir)"
            )


def rescore(
    results_dir: str | Path,
    run: str,
    metrics: list[str],
    metric_kwargs: dict[str, dict[str, Any]] | None = None,
    *,
    data_dir: str | None = None,
    show_progress: bool = False,
) -> RunRecord:
    """Score ``metrics`` on the saved run ``run`` (id, unique prefix or record path).

    ``metric_kwargs`` maps a metric name to its settings. Returns the updated record.
    """
    from dbench.engine.resolve import make_dataset, stream_rng

    results_dir = Path(results_dir)
    metric_kwargs = dict(metric_kwargs or {})
    if not metrics:
        raise UserError("rescore needs at least one metric name")
    fns = {name: METRICS.get(name) for name in metrics}  # unknown names fail before any work
    for name in metric_kwargs:
        if name not in fns:
            raise UserError(f"settings given for metric {name!r}, which is not being scored")

    record = find_record(results_dir, run)
    model_info = record["model"]
    state = results_dir / model_info["state_file"]
    if not state.exists():
        raise UserError(f"run {record['run_id']}: its model state {state} is missing")
    model = MODELS.create(model_info["name"], **model_info.get("kwargs", {}))
    model.load(state)

    config = record["config"]
    sim = make_dataset(config["dataset"], config.get("dataset_kwargs", {}), data_dir)
    _check_same_data(record, sim.describe())

    rep = Representation(sim, model.encode, show_progress=show_progress)
    seed = int(config["seed"])
    started = time.perf_counter()
    scores, meta, seconds = {}, {}, {}
    for name, fn in fns.items():
        settings = metric_kwargs.get(name, {})
        t0 = time.perf_counter()
        scores[name] = fn(sim, rep, stream_rng(seed, f"metric:{name}"), **settings)
        seconds[name] = time.perf_counter() - t0
        meta[name] = {
            **metric_info(fn),
            "settings": settings,
            "origin": METRICS.entry(name).origin,
        }

    updated = dict(record)
    updated.pop("path", None)  # run_one's return value carries it; the file never does
    updated["scores"] = {**record.get("scores", {}), **scores}
    updated["metrics"] = {**record.get("metrics", {}), **meta}
    timings = dict(record.get("timings", {}))
    timings["metrics_s"] = {**timings.get("metrics_s", {}), **seconds}
    updated["timings"] = timings
    # The run's identity (and id) stay those of its training; the log says what came later.
    updated["rescored"] = [
        *record.get("rescored", []),
        {
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "metrics": list(fns),
            "representation": {"requested": rep.requested, "encoded": rep.encoded},
            "seconds": time.perf_counter() - started,
        },
    ]
    path = write_record(results_dir, updated)
    return {**updated, "path": str(path)}
