"""A registered model end to end through ``run_one``, at a tiny size: :func:`check_run`.

The same path ``dbench run`` takes (settings check, dataset, fit, save, scoring, record), on a
small registered dataset with a fast metric, so a model that passes :func:`check_model` but
trips over the engine (its budget, its parameters in the record) is caught too.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dbench.contracts import Budget
from dbench.testing.model import TINY_BUDGET
from dbench.testing.results import CheckResult, Suite, expect

#: a registered dataset that renders 64 images of 64x64 in milliseconds
RUN_DATASET = "blobs"
RUN_DATASET_KWARGS = {"grid": 8}
#: Higgins et al. (2017)'s metric with a few dozen points instead of 15,000
RUN_METRIC = "higgins"
RUN_METRIC_SETTINGS = {"num_train": 40, "num_eval": 20, "batch_size": 8}


def check_run(
    model: str,
    *,
    model_kwargs: Mapping[str, Any] | None = None,
    dataset: str = RUN_DATASET,
    dataset_kwargs: Mapping[str, Any] | None = None,
    metric: str = RUN_METRIC,
    metric_settings: Mapping[str, Any] | None = None,
    budget: Budget = TINY_BUDGET,
    seed: int = 0,
    results_dir: str | Path | None = None,
) -> list[CheckResult]:
    """``run_one`` of registered ``model`` on ``dataset`` (default: blobs on an 8x8 grid)
    scored by ``metric`` (default: higgins with tiny settings), on the CPU.

    Checks ``run_one`` (it completes) and ``record`` (finite headline score, the budget asked
    for, a readable record file and a saved model state). ``results_dir`` defaults to a
    temporary folder removed afterwards.
    """
    if dataset_kwargs is None:
        dataset_kwargs = RUN_DATASET_KWARGS if dataset == RUN_DATASET else {}
    if metric_settings is None:
        metric_settings = RUN_METRIC_SETTINGS if metric == RUN_METRIC else {"fast": True}
    suite = Suite(f"model {model}")
    state: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dbench-check-") as tmp:
        root = Path(results_dir) if results_dir is not None else Path(tmp)

        def run() -> str:
            from dbench.engine.config import RunConfig
            from dbench.engine.run import run_one

            config = RunConfig(
                model=model,
                dataset=dataset,
                model_kwargs=dict(model_kwargs or {}),
                dataset_kwargs=dict(dataset_kwargs),
                metrics=[metric],
                settings={f"{metric}.{key}": v for key, v in metric_settings.items()},
                seed=seed,
                budget=budget,
                device="cpu",
                results_dir=str(root),
            )
            state["record"] = run_one(config, progress=False)
            return f"on {dataset} {dict(dataset_kwargs)}, scored by {metric}"

        suite.check("run_one", run)
        suite.check(
            "record", lambda: _record(state["record"], metric, budget, root), needs=["run_one"]
        )
    return suite.results


def _record(record: dict[str, Any], metric: str, budget: Budget, root: Path) -> str:
    from dbench.engine.store import read_record
    from dbench.registry import METRICS

    primary = METRICS.get(metric).primary
    scores = record.get("scores", {}).get(metric, {})
    expect(primary in scores, f"record has no {metric} {primary!r} score: {scores}")
    value = scores[primary]
    expect(isinstance(value, float) and math.isfinite(value), f"{metric} {primary} = {value!r}")
    expect(
        record["budget"] == budget.as_dict(),
        f"record budget {record['budget']}, asked for {budget.as_dict()}",
    )
    stored = read_record(Path(record["path"]))
    expect(stored["run_id"] == record["run_id"], "the record file holds another run")
    state_file = root / record["model"]["state_file"]
    expect(state_file.exists(), f"no saved model state at {state_file}")
    return f"{metric} {primary} = {value:.3g}, run {record['run_id']}"
