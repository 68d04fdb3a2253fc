"""The run record as one typed model: built in one place, validated in one place.

Why pydantic (v2) rather than dataclasses: a record is *input* as much as output (results
folders are shared, copied and edited), so it needs one validator with precise messages
(``config.seed: must be <= 4294967295``), strict types (``"5"`` is not a seed, ``true`` is
not a score) and a published JSON schema (``docs/record.schema.json``, generated from this
module by :func:`json_schema`); pydantic gives all three from one declaration, and it already
ships with Ray Tune. The rest of dbench still reads records as plain dicts: the model checks
and builds them, it does not wrap every access.

Schema history: 1 (0.1–0.2) named runs by the spelled config; 2 carries the resolved
:class:`~dbench.engine.identity.RunIdentity` and names the run by it. Schema-1 records stay
readable (their identity is resolved from their content) and ``dbench migrate`` rewrites them.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from dbench.checks import SEED_MAX, is_safe_name
from dbench.engine.identity import RunIdentity

SCHEMA_VERSION = 2

Score = StrictFloat | StrictInt | None  # strict: a boolean or a string is not a score
Seed = Annotated[StrictInt, Field(ge=0, le=SEED_MAX)]


class ConfigBlock(BaseModel):
    """What the user asked for (as given; the identity holds what it resolved to)."""

    model_config = ConfigDict(extra="allow")

    dataset: StrictStr
    model: StrictStr
    seed: Seed
    model_kwargs: dict[str, Any] = {}
    dataset_kwargs: dict[str, Any] = {}
    metric_kwargs: dict[str, Any] = {}
    metrics: list[StrictStr] | None = None


class Record(BaseModel):
    """One run: what ran (``identity``), what it was asked (``config``), what it scored."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    # absent in records of 0.1 (schema 1); build() writes the current one
    schema_version: StrictInt = Field(1, alias="schema", ge=1, le=SCHEMA_VERSION)
    run_id: StrictStr
    created: str | None = None
    origin: Literal["trained", "evaluate"] = "trained"
    config: ConfigBlock
    identity: dict[str, Any] = {}
    model: dict[str, Any] = {}
    dataset: dict[str, Any] = {}
    budget: dict[str, Any] = {}
    training: dict[str, Any] = {}
    scores: dict[str, dict[str, Score]]
    metrics: dict[str, Any] = {}
    representation: dict[str, Any] | None = None
    timings: dict[str, Any] = {}
    environment: dict[str, Any] = {}
    history: list[Any] = []
    previous_run_ids: list[StrictStr] = []

    @model_validator(mode="after")
    def _consistent(self) -> Record:
        if not is_safe_name(self.run_id):
            raise ValueError(f"invalid run id {self.run_id!r}")
        if self.schema_version >= 2:
            try:
                ident = RunIdentity.model_validate(self.identity)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"identity.{where}: {first['msg']}") from None
            for key in ("dataset", "model", "seed"):
                if getattr(ident, key) != getattr(self.config, key):
                    raise ValueError(f"identity.{key} disagrees with config.{key}")
        return self


def problem(record: Any) -> str | None:
    """Why ``record`` is not a usable run record (one line), or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    run_id = record.get("run_id")
    if not is_safe_name(run_id):
        return f"invalid run id {run_id!r}"
    schema = record.get("schema", 1)
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION:
        return f"written by a newer dbench (schema {schema} > {SCHEMA_VERSION}); upgrade dbench"
    try:
        Record.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        return f"{where}: {first['msg']}"
    except RecursionError:
        return "nested too deeply"
    return None


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None: records are strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def build(**fields: Any) -> dict[str, Any]:
    """The record as a plain dict, validated: the one place records are built."""
    fields.setdefault("schema", SCHEMA_VERSION)
    record = Record.model_validate(strict_json(fields))
    return record.model_dump(mode="json", by_alias=True, exclude_unset=True)


# -- portable records: no absolute machine paths --------------------------------------------
#: fields of ``config`` that say where things were on the machine that ran, not what ran
MACHINE_FIELDS = ("data_dir", "results_dir")


def portable_path(path: Any, root: Any) -> Any:
    """``path`` relative to ``root`` when inside it, else just its file name."""
    if not isinstance(path, str) or not path:
        return path
    p = Path(path)
    if not p.is_absolute():
        return path
    try:
        return str(p.relative_to(Path(root).absolute())) if root is not None else p.name
    except ValueError:
        return p.name


def portable_command(command: Any) -> Any:
    """The command line without absolute paths (a Ray worker's long argv becomes its name)."""
    if not isinstance(command, str):
        return command
    try:
        argv = shlex.split(command)
    except ValueError:
        return "?"
    if argv and argv[0].endswith("default_worker.py"):
        return "ray worker"
    return shlex.join(Path(a).name if a.startswith("/") else a for a in argv)


def json_schema() -> dict[str, Any]:
    """The record's JSON schema (published as docs/record.schema.json)."""
    schema = Record.model_json_schema(by_alias=True)
    schema["$defs"]["RunIdentity"] = RunIdentity.model_json_schema()
    return schema
