"""Run records: one self-describing JSON file per run, written atomically and read back.

Layout under the results root::

    runs/<run_id>.json          the record (schema below)
    artifacts/<run_id>/         the trained model's state and training checkpoints

A record is written to a temporary file in the same folder and renamed into place, so a reader
never sees half a record and an interrupted run leaves none behind.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from dbench.atomic import write_json
from dbench.errors import UserError

SCHEMA_VERSION = 1
RunRecord = dict[str, Any]


def runs_dir(results_dir: Path) -> Path:
    return Path(results_dir) / "runs"


def artifacts_dir(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / "artifacts" / run_id


def record_path(results_dir: Path, run_id: str) -> Path:
    return runs_dir(results_dir) / f"{run_id}.json"


def ensure_writable(results_dir: Path) -> None:
    """Fail before any work is done if records cannot be written there."""
    folder = runs_dir(results_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as exc:
        raise UserError(f"results directory {results_dir} is not writable: {exc}") from None


def write_record(results_dir: Path, record: RunRecord) -> Path:
    path = record_path(results_dir, record["run_id"])
    try:
        write_json(path, record)
    except OSError as exc:
        raise UserError(f"cannot write run record {path}: {exc}") from None
    return path


def read_record(path: Path) -> RunRecord:
    """One record; a :class:`UserError` naming the file if it is unreadable or not a record."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"unreadable run record {path}: {exc}") from None
    if not isinstance(record, dict) or not {"run_id", "config", "scores"} <= record.keys():
        raise UserError(f"not a dbench run record: {path}")
    return record


def iter_records(results_dir: Path) -> tuple[list[RunRecord], list[str]]:
    """All readable records under the results root, and one message per skipped file."""
    records, skipped = [], []
    for path in sorted(runs_dir(Path(results_dir)).glob("*.json")):
        try:
            records.append(read_record(path))
        except UserError as exc:
            skipped.append(str(exc))
    return records, skipped


def find_record(results_dir: Path, run: str) -> RunRecord:
    """A record by run id, unique id prefix, or path to its JSON file."""
    candidate = Path(run)
    if candidate.suffix == ".json" and candidate.exists():
        return read_record(candidate)
    matches = sorted(runs_dir(Path(results_dir)).glob(f"{run}*.json"))
    if len(matches) != 1:
        what = "no run" if not matches else f"{len(matches)} runs"
        raise UserError(f"{what} matching {run!r} under {runs_dir(Path(results_dir))}")
    return read_record(matches[0])
