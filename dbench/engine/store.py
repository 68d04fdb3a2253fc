"""Run records: one self-describing JSON file per run, written atomically and read back.

Layout under the results root::

    runs/<run_id>.json          the record
    artifacts/<run_id>/         the trained model's state and training checkpoints

Records are input like any other file: :func:`validate_record` checks the structure of every
record read (the one place that does), run ids must match :data:`dbench.checks.RUN_ID`
(no separators, no ``..``), and every path derived from a record is resolved under its root.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic_core import from_json

from dbench.atomic import write_text
from dbench.checks import RUN_ID
from dbench.engine.record import problem, strict_json
from dbench.errors import UserError

RunRecord = dict[str, Any]

#: a run's sampled-representation scores live beside its record, under its id + this suffix
#: (``dbench score --representation sampled``, :mod:`dbench.engine.rescore`)
SAMPLED_SUFFIX = "-sampled"


#: where a record's ``representation`` block may say ``"sampled"``
_SAMPLED_KEYS = ("kind", "mode", "which", "representation", "name")


def is_sampled(record: RunRecord) -> bool:
    """Whether a record's scores were measured on the sampled (not the mean) representation
    (its ``representation`` block says ``"sampled"``): a run's sibling, not a run."""
    rep = record.get("representation")
    if rep == "sampled":
        return True
    return isinstance(rep, dict) and any(rep.get(k) == "sampled" for k in _SAMPLED_KEYS)


def check_run_id(run_id: Any) -> str:
    if not RUN_ID.accepts(run_id):
        raise UserError(f"invalid run id {run_id!r} ({RUN_ID.words})")
    return run_id


def runs_dir(results_dir: Path) -> Path:
    return Path(results_dir) / "runs"


def artifacts_dir(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / "artifacts" / check_run_id(run_id)


def own_file(results_dir: Path, run_id: str, name: str, what: str) -> Path:
    """``artifacts/<run_id>/<name>`` under the results root, refused with one line when a link
    (the folder, the file or ``artifacts/`` itself) takes it anywhere else."""
    root = Path(results_dir).resolve()
    here = artifacts_dir(root, run_id) / name
    there = here.resolve()
    if there != here:
        inside = there.is_relative_to(root)
        where = "outside the results root" if not inside else "to another file"
        raise UserError(f"run {run_id}: refusing {what} {here}: a link {where} ({there})")
    return here


def record_path(results_dir: Path, run_id: str) -> Path:
    return runs_dir(results_dir) / f"{check_run_id(run_id)}.json"


def ensure_writable(results_dir: Path) -> None:
    """Fail before any work is done if records could not be written there (creates nothing)."""
    folder = runs_dir(results_dir).absolute()
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"results directory {results_dir} is not writable: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"results directory {results_dir} is not writable ({probe})")


def remove_empty(*folders: Path) -> None:
    """Remove folders a failed run created and left empty (deepest first); keep the rest."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty (checkpoints to resume from) or already gone


def write_record(results_dir: Path, record: RunRecord) -> Path:
    path = record_path(results_dir, record["run_id"])
    try:  # strict JSON: no NaN or Infinity in any record dbench writes
        write_text(path, json.dumps(strict_json(record), indent=2, sort_keys=True, allow_nan=False))
    except OSError as exc:
        raise UserError(f"cannot write run record {path}: {exc}") from None
    return path


def record_problem(record: Any) -> str | None:
    """Why ``record`` is not a usable run record, or None (:func:`dbench.engine.record.problem`:
    one validator for every record read)."""
    return problem(record)


def validate_record(record: Any, where: Any) -> RunRecord:
    problem = record_problem(record)
    if problem:
        raise UserError(f"not a usable dbench run record: {where}: {problem}")
    return record


def read_record(path: Path) -> RunRecord:
    """One record; a :class:`UserError` naming the file if it is unreadable or malformed."""
    path = Path(path)
    if path.is_symlink() and path.resolve().parent != path.parent.resolve():
        raise UserError(f"refusing run record {path}: a link to a file outside its folder")
    try:
        # pydantic-core's parser: the same values as json.loads (floats bit for bit, NaN and
        # Infinity accepted), twice as fast, and nesting beyond 200 levels or integers beyond
        # 4,300 digits are a ValueError, as a malformed file is
        record = from_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UserError(f"unreadable run record {path}: {exc}") from None
    record = validate_record(record, path)
    if Path(path).stem != record["run_id"]:
        raise UserError(f"run record {path} holds run id {record['run_id']!r}, not its file name")
    return record


def iter_records(results_dir: Path) -> tuple[list[RunRecord], list[str]]:
    """All usable records under the results root, and one message per skipped file."""
    records, skipped = [], []
    folder = runs_dir(Path(results_dir))
    if folder.is_symlink() and not folder.resolve().is_relative_to(Path(results_dir).resolve()):
        return [], [f"refusing {folder}: a link to a folder outside the results root"]
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(read_record(path))
        except UserError as exc:
            skipped.append(str(exc))
    return records, skipped


def find_record(results_dir: Path, run: str) -> RunRecord:
    """A record by run id, unique id prefix, or the path of its file under ``runs/``."""
    folder = runs_dir(Path(results_dir))
    if run.endswith(".json") or "/" in run or "\\" in run:
        path = Path(run).resolve()
        if path.parent != folder.resolve():
            raise UserError(f"{run} is not a run record under {folder}")
        if not path.is_file():
            raise UserError(f"no run record {run}")
        return read_record(path)
    check_run_id(run)
    matches = sorted(folder.glob(f"{run}*.json"))
    exact = [m for m in matches if m.stem == run]
    if exact:
        matches = exact
    elif len(matches) > 1:  # a run and its sampled-representation sibling: the run
        runs = [m for m in matches if not m.stem.endswith(SAMPLED_SUFFIX)]
        matches = runs if len(runs) == 1 else matches
    if len(matches) != 1:
        what = "no run" if not matches else f"{len(matches)} runs"
        raise UserError(f"{what} matching {run!r} under {folder}")
    return read_record(matches[0])
