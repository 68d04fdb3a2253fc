"""Run records as a pandas DataFrame, one row per run (``dbench.load_runs``)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbench.engine.store import RunRecord, iter_records

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def flatten(record: RunRecord) -> dict[str, Any]:
    """One leaderboard row: identity columns plus ``metric.score`` columns."""
    config = record["config"]
    row = {
        "run_id": record["run_id"],
        "dataset": config["dataset"],
        "model": config["model"],
        "kwargs": json.dumps(config.get("model_kwargs", {}), sort_keys=True),
        "budget": json.dumps(record.get("budget", {}), sort_keys=True),
        "seed": config.get("seed"),
        "source": record.get("dataset", {}).get("source"),
        "created": record.get("created"),
        "fit_seconds": record.get("timings", {}).get("fit_s"),
    }
    for metric_name, scores in record.get("scores", {}).items():
        for score_name, value in scores.items():
            row[f"{metric_name}.{score_name}"] = value
    return row


def load_runs(results_dir: str | os.PathLike = "results") -> pd.DataFrame:
    """Every run record under ``results_dir`` as a DataFrame, one row per run.

    Unreadable records are skipped with a warning that names each one and counts them.
    """
    import pandas as pd

    records, skipped = iter_records(Path(results_dir))
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} unreadable record(s): " + "; ".join(skipped), stacklevel=2
        )
    return pd.DataFrame([flatten(r) for r in records])
