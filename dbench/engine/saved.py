"""A saved run: its fitted model rebuilt from the record (registry name, kwargs, state file).

Used by rescoring and by the per-run figures, so both read the same record fields. The state
file is only ever the run's own file: its path must resolve inside the run's artifact folder
under the results root, whatever the record says.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dbench.engine.resolve import make_dataset
from dbench.engine.store import RunRecord, artifacts_dir, own_file
from dbench.errors import UserError
from dbench.registry import MODELS


def state_path(results_dir: str | Path, record: RunRecord) -> Path:
    """The run's model state file, checked to lie in its own artifact folder."""
    run_id = record["run_id"]
    state = (record.get("model") or {}).get("state_file")
    if not isinstance(state, str) or not state:
        raise UserError(f"run {run_id} recorded no model state file")
    root = Path(results_dir).resolve()
    folder = artifacts_dir(root, run_id)
    named = Path(os.path.normpath(root / state))  # where the record says, before any link
    if named.parent != folder:
        raise UserError(
            f"run {run_id}: refusing model state {state!r}, which is not the run's own file "
            f"under {folder}"
        )
    path = own_file(root, run_id, named.name, "model state")  # and no link leads elsewhere
    if not path.is_file():
        raise UserError(f"run {run_id}: its model state {path} is missing")
    return path


def load_model(results_dir: str | Path, record: RunRecord) -> Any:
    """The run's fitted model, rebuilt from its registry name, kwargs and state file."""
    config = record["config"]
    path = state_path(results_dir, record)
    model = MODELS.create(config["model"], **(config.get("model_kwargs") or {}))
    return model.load(path) or model


def load_dataset(record: RunRecord, data_dir: str | None = None) -> Any:
    """The run's dataset, checked to be the data the run was scored on."""
    config = record["config"]
    sim = make_dataset(config["dataset"], config.get("dataset_kwargs") or {}, data_dir)
    before, now = record.get("dataset", {}), sim.describe()
    for key in ("source", "checksum"):
        if before.get(key) != now.get(key):
            raise UserError(
                f"run {record['run_id']} was scored on dataset {key} {before.get(key)!r}, "
                f"but {now.get(key)!r} is what loads now; give the same data (--data-dir)"
            )
    return sim
