"""Score a saved run with more (or re-set) metrics, without training again.

The model is rebuilt from the record (:mod:`dbench.engine.saved`), and the metrics are scored
by the same loop as ``run_one`` (:func:`dbench.engine.scoring.score_all`: one shared
representation, the run's own per-metric random streams), so rescoring a metric the run
already has, with the same settings, reproduces its value. Results merge into the record,
which is rewritten atomically.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dbench.engine.saved import load_dataset, load_model
from dbench.engine.scoring import score_all
from dbench.engine.settings import check_metrics
from dbench.engine.store import RunRecord, find_record, write_record
from dbench.errors import UserError


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
    results_dir = Path(results_dir)
    metric_kwargs = dict(metric_kwargs or {})
    if not metrics:
        raise UserError("rescore needs at least one metric name")
    specs = check_metrics(metrics, metric_kwargs)  # bad names or settings: before any work
    record = find_record(results_dir, run)
    model = load_model(results_dir, record)
    sim = load_dataset(record, data_dir)
    for name, spec in specs.items():
        spec.check(metric_kwargs.get(name, {}), sim)

    started = time.perf_counter()
    seed = int(record["config"]["seed"])
    scored = score_all(sim, model.encode, specs, metric_kwargs, seed, show_progress=show_progress)

    updated = dict(record)
    updated.pop("path", None)  # run_one's return value carries it; the file never does
    updated["scores"] = {**record.get("scores", {}), **scored.scores}
    updated["metrics"] = {**record.get("metrics", {}), **scored.meta}
    timings = dict(record.get("timings", {}))
    timings["metrics_s"] = {**timings.get("metrics_s", {}), **scored.seconds}
    updated["timings"] = timings
    # The run's identity (and id) stay those of its training; the log says what came later.
    updated["rescored"] = [
        *record.get("rescored", []),
        {
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "metrics": list(specs),
            "representation": scored.representation,
            "seconds": time.perf_counter() - started,
        },
    ]
    path = write_record(results_dir, updated)
    return {**updated, "path": str(path)}
