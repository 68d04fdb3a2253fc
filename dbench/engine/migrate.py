"""``dbench migrate``: rewrite records from before resolved identities (schema 1) as schema 2.

Schema-1 records are read transparently (their identity is resolved from their content, see
:func:`dbench.engine.identity.identity_of_record`), so leaderboards need no migration. What
migration adds is the run id: a schema-1 run is named by its spelled config, so ``dbench run``
of the same configuration would look for it under another name and train again. Migration
renames each record (and its artifact folder) to the id of its resolved identity, keeps the
old id under ``previous_run_ids``, and drops the absolute paths of the machine that wrote it.
Nothing is trained or rescored; scores are copied as they are.

Order of writes, so an interruption loses nothing: the new record is written, then the
artifact folder renamed, then the old record removed. Two schema-1 records of one run (one
identity) become one record (the newer); the other is kept under ``runs/replaced/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbench.engine.identity import identity_of_record
from dbench.engine.record import (
    MACHINE_FIELDS,
    SCHEMA_VERSION,
    build,
    portable_command,
    portable_path,
)
from dbench.engine.store import (
    artifacts_dir,
    iter_records,
    record_path,
    runs_dir,
    write_record,
)


@dataclass
class Migration:
    renamed: dict[str, str] = field(default_factory=dict)  # old id -> new id
    current: list[str] = field(default_factory=list)  # already schema 2
    duplicates: list[str] = field(default_factory=list)  # kept under runs/replaced/
    skipped: list[str] = field(default_factory=list)  # unreadable: left as they are


def migrated(record: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 record as schema 2 (pure: nothing on disk changes)."""
    ident = identity_of_record(record)
    new_id = ident.run_id
    out = {k: v for k, v in record.items() if k not in ("path", "existing", "outcome")}
    out["schema"] = SCHEMA_VERSION
    out["run_id"] = new_id
    out["identity"] = ident.model_dump()
    out["origin"] = "evaluate" if record.get("origin") == "evaluate" else "trained"
    out["previous_run_ids"] = [*record.get("previous_run_ids", []), record["run_id"]]
    out["legacy_identity"] = record.get("identity", {})  # what schema 1 hashed, for the record
    out["config"] = {k: v for k, v in record["config"].items() if k not in MACHINE_FIELDS}
    dataset = dict(record.get("dataset") or {})
    if "path" in dataset:
        dataset["path"] = portable_path(dataset["path"], record["config"].get("data_dir"))
    out["dataset"] = dataset
    environment = dict(record.get("environment") or {})
    if "command" in environment:
        environment["command"] = portable_command(environment["command"])
    out["environment"] = environment
    model = dict(record.get("model") or {})
    if isinstance(model.get("state_file"), str) and model["state_file"]:
        model["state_file"] = f"artifacts/{new_id}/model.state"
    out["model"] = model
    return build(**out)


def migrate(results_dir: str | Path, dry_run: bool = False) -> Migration:
    """Migrate every schema-1 record under ``results_dir`` (see the module docstring)."""
    results_dir = Path(results_dir)
    records, skipped = iter_records(results_dir)
    result = Migration(skipped=skipped)
    taken = {r["run_id"] for r in records if r.get("schema", 1) >= 2}
    newest_first = sorted(records, key=lambda r: (str(r.get("created")), r["run_id"]), reverse=True)
    for record in newest_first:
        if record.get("schema", 1) >= 2:
            result.current.append(record["run_id"])
            continue
        old_id = record["run_id"]
        new = migrated(record)
        new_id = new["run_id"]
        if new_id in taken:  # a second record of one run: set aside, never lost
            result.duplicates.append(old_id)
            if not dry_run:
                keep = runs_dir(results_dir) / "replaced" / f"{old_id}.{int(time.time())}.json"
                keep.parent.mkdir(exist_ok=True)
                record_path(results_dir, old_id).replace(keep)
            continue
        taken.add(new_id)
        result.renamed[old_id] = new_id
        if dry_run:
            continue
        write_record(results_dir, new)
        old_art, new_art = artifacts_dir(results_dir, old_id), artifacts_dir(results_dir, new_id)
        if old_art.is_dir() and not old_art.is_symlink() and not new_art.exists():
            old_art.rename(new_art)
        if old_id != new_id:
            record_path(results_dir, old_id).unlink()
    return result
