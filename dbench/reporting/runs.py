"""Run records as a pandas DataFrame, one row per run (``dbench.load_runs``).

Plain columns, one value each: ``run_id``, ``created`` (datetime, UTC), ``dataset``,
``source``, ``model``, ``seed``, ``steps``, ``batch_size``; the dataset's resolved kwargs as
``dataset_<name>``; each resolved hyperparameter under its own name (``beta``,
``n_components``; ``param_<name>`` if that name is taken); each score as
``<metric>.<score>``; then ``recon_loss`` and ``kl`` (end of training), ``fit_seconds``,
``metric_seconds``, ``device``, ``precision`` (of training), ``data_checksum`` and the
versions. ``long=True`` gives one row per run x score (``metric``, ``score``, ``value``).

The leaderboard uses the same frame plus private ``_``-prefixed key columns (canonical JSON of
the configuration's parts, see :mod:`dbench.reporting.identity`); ``load_runs`` drops them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbench.checks import SEED_MAX
from dbench.engine.store import RunRecord, is_sampled, iter_records
from dbench.reporting import identity
from dbench.reporting.labels import data_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

BASE = ["run_id", "created", "dataset", "source", "model", "seed", "steps", "batch_size"]
TAIL = [
    "recon_loss",
    "kl",
    "fit_seconds",
    "metric_seconds",
    "device",
    "precision",
    "data_checksum",
    "dbench_version",
    "python_version",
    "torch_version",
    "numpy_version",
    "git_commit",
]
PRIVATE = [
    "_params", "_data", "_data_text", "_budget", "_protocol", "_factors", "_config", "_run"
]  # fmt: skip
LONG = ["metric", "score", "value"]
#: where ``aggregate.load_records`` keeps a record's summary (:func:`summarise`)
SUMMARY_KEY = "\x00summary"
#: names a hyperparameter column may not take (it becomes ``param_<name>``)
RESERVED = frozenset(
    BASE + TAIL + ["rank", "n", "seeds", "run_ids", "label", "protocol", "budget", *LONG]
)
_VERSIONS = {
    "dbench_version": "dbench_version",
    "python_version": "python",
    "torch_version": "torch",
    "numpy_version": "numpy",
    "git_commit": "git_commit",
}


def param_column(name: str) -> str:
    """The column of hyperparameter ``name``: the name itself unless taken or ambiguous."""
    if name in RESERVED or "." in name or name.startswith(("_", "dataset_", "param_")):
        return f"param_{name}"
    return name


def data_column(name: str) -> str:
    return f"dataset_{name}"


def cell(value: Any) -> Any:
    """A value as one plain cell: scalars as they are, anything else as short text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return json.dumps(value, sort_keys=True)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _last(value: Any) -> Any:
    # fit_info_ may keep a history (a list per step/epoch): the final value describes the model.
    if isinstance(value, (list, tuple)):
        return value[-1] if value else None
    return value


def _kl_total(training: dict[str, Any]) -> float:
    per_dim = training.get("kl_per_dim")
    if isinstance(per_dim, (list, tuple)) and per_dim:
        return float(sum(_number(v) for v in per_dim))
    return _number(_last(training.get("kl")))


def _metric_seconds(timings: dict[str, Any]) -> float:
    value = timings.get("metrics_s")
    if isinstance(value, dict):
        return float(sum(_number(v) for v in value.values()))
    return _number(value)


def run_row(record: RunRecord) -> dict[str, Any]:
    """One record as one flat row (public columns and the private key columns)."""
    config = record["config"]
    shared, seed = _configuration(record)
    data, budget = shared["data"], shared["budget"]
    info = _mapping(record.get("dataset"))
    row: dict[str, Any] = {
        "run_id": record["run_id"],
        "created": record.get("created"),
        "dataset": config["dataset"],
        "source": data["source"],
        "model": config["model"],
        "seed": config.get("seed"),
        "steps": budget.get("steps"),
        "batch_size": budget.get("batch_size"),
    }
    row.update(shared["cells"])  # dataset kwargs and hyperparameters, one column each
    for metric, scores in record["scores"].items():
        for score, value in scores.items():
            row[f"{metric}.{score}"] = _number(value)
    training = _mapping(record.get("training"))
    timings = _mapping(record.get("timings"))
    environment = _mapping(record.get("environment"))
    row.update(
        recon_loss=_number(_last(training.get("recon_loss"))),
        kl=_kl_total(training),
        fit_seconds=_number(timings.get("fit_s")),
        metric_seconds=_metric_seconds(timings),
        device=environment.get("device"),
        precision=training.get("precision"),
        data_checksum=data["checksum"],
        **{col: environment.get(key) for col, key in _VERSIONS.items()},
    )
    factors = info.get("factor_names")
    if shared["run_head"] is None:  # the mark occurs in the configuration itself
        run = identity.run_key(shared["configuration"], seed)
    else:
        text = f"{shared['run_head']}{seed}{shared['run_tail']}"
        run = hashlib.sha256(text.encode()).hexdigest()
    row.update(
        _params=shared["_params"],
        _data=shared["_data"],
        _data_text=shared["_data_text"],
        _budget=shared["_budget"],
        _protocol=_protocol_text(record),
        _config=shared["_config"],
        _run=run,  # == identity.run_key(configuration, seed) == ident.key
        _factors=json.dumps(factors if isinstance(factors, list) else []),
    )
    return row


#: the seed-independent parts of rows, by configuration (a study has 50 seeds of each)
_CONFIGURATIONS: dict[tuple[str, str], dict[str, Any]] = {}
_CACHE_SIZE = 4096
#: stands for the seed in a run key's text, which is split around it (JSON escapes the NULs)
_SEED_MARK = "\x00seed\x00"


def _configuration(record: RunRecord) -> tuple[dict[str, Any], int]:
    """What a row takes from its run's configuration (the identity without the seed, computed
    once per distinct configuration) and the run's seed.

    A schema-2 record's configuration is cached on the ``repr`` of its identity block without
    the seed: equal texts are equal content, since records hold JSON values only (``4`` and
    ``4.0``, or keys in another order, are two entries with equal results). The first record
    of a configuration is validated as :func:`~dbench.engine.identity.identity_of_record`
    does; the others differ from it only in the seed, which is checked here."""
    raw = record.get("identity")
    if record.get("schema", 1) >= 2 and isinstance(raw, dict):
        key = (repr({k: v for k, v in raw.items() if k != "seed"}), record["config"]["dataset"])
        shared = _CONFIGURATIONS.get(key)
        seed = raw.get("seed")
        if shared is not None and type(seed) is int and 0 <= seed <= SEED_MAX:
            return shared, seed
    else:
        key = None
    ident = identity.identity_of_record(record)  # the one definition of sameness
    shared = _configuration_of(ident, record["config"]["dataset"])
    if key is not None:
        _remember(_CONFIGURATIONS, key, shared)
    return shared, ident.seed


def _remember(cache: dict, key: Any, value: Any) -> None:
    """Keep ``value`` in one of this module's caches, emptied when it holds :data:`_CACHE_SIZE`
    entries (a results root with more distinct ones is rare; a bound keeps memory flat)."""
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _configuration_of(ident: identity.RunIdentity, dataset: str) -> dict[str, Any]:
    data = {"source": ident.source, "checksum": ident.checksum, "kwargs": ident.data_kwargs}
    budget = identity.budget_of({}, ident)
    configuration = ident.configuration()
    cells = {data_column(k): cell(v) for k, v in data["kwargs"].items()}
    cells.update({param_column(k): cell(v) for k, v in ident.params.items()})
    # RunIdentity.key's text with the seed cut out: a run's key is one hash, not one dump
    text = json.dumps({**configuration, "seed": _SEED_MARK}, sort_keys=True)
    mark = json.dumps(_SEED_MARK)
    head, tail = text.split(mark, 1) if text.count(mark) == 1 else (None, None)
    return {
        "data": data,
        "budget": budget,
        "cells": cells,
        "configuration": configuration,
        "run_head": head,
        "run_tail": tail,
        "_params": identity.key_text(ident.params),
        "_data": identity.key_text(data),
        "_data_text": data_text(data, _data_defaults(dataset, data["kwargs"])),
        "_budget": identity.key_text(budget) if budget else "unknown",
        "_config": identity.digest(configuration),  # == ident.config_key
    }


def _data_defaults(dataset: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    # Only kwargs are compared with the defaults: with none (every built-in dataset of the
    # studies) the dataset's module, and torch with it, is not loaded.
    return identity.dataset_defaults(dataset) if kwargs else {}


#: protocol texts by the ``repr`` of what they are computed from (a study's records share them)
_PROTOCOLS: dict[str, str] = {}


def _protocol_text(record: RunRecord) -> str:
    """The canonical JSON of the record's metric protocols: per scored metric its version and
    settings, and the settings the config gave it. Cached on the ``repr`` of those parts
    (JSON values only: equal texts are equal content)."""
    metrics = _mapping(record.get("metrics"))
    given = _mapping(record["config"].get("metric_kwargs"))
    parts = []
    for name in sorted(record["scores"]):
        info = _mapping(metrics.get(name))
        parts.append((name, info.get("version"), info.get("resolved_settings"),
                      "settings" in info, info.get("settings"), given.get(name)))  # fmt: skip
    basis = repr(parts)
    text = _PROTOCOLS.get(basis)
    if text is None:
        text = _protocol_of(parts)
        _remember(_PROTOCOLS, basis, text)
    return text


def _protocol_of(parts: list[tuple]) -> str:
    """The protocol text of a record holding only these parts (what it depends on)."""
    metrics, given = {}, {}
    for name, version, resolved, has_settings, settings, kwargs in parts:
        metrics[name] = {"version": version, "resolved_settings": resolved}
        if has_settings:  # present, even as null, it is what counts (not the config's)
            metrics[name]["settings"] = settings
        given[name] = kwargs
    record = {"scores": dict.fromkeys(metrics), "metrics": metrics,
              "config": {"metric_kwargs": given}}  # fmt: skip
    return identity.key_text(identity.protocol(record))


#: metrics summaries by the ``repr`` of what they are built from, shared by the records that
#: have equal ones (a study's records do): read only, like the record index's decoded ones
_METRICS: dict[str, dict[str, dict[str, Any]]] = {}


def record_metrics(record: RunRecord) -> dict[str, dict[str, Any]]:
    """Per scored metric: its score names (in the record's order), and the headline score and
    lower-is-better scores the record's ``metrics`` meta declares (None and [] if it does not)."""
    meta = _mapping(record.get("metrics"))
    parts = []
    for name, values in record["scores"].items():
        info = _mapping(meta.get(name))
        parts.append((name, list(values), info.get("primary"), info.get("lower_is_better")))
    basis = repr(parts)
    out = _METRICS.get(basis)
    if out is None:
        out = {name: {"scores": values, "primary": primary or None,
                      "lower_is_better": list(lower or ())}
               for name, values, primary, lower in parts}  # fmt: skip
        _remember(_METRICS, basis, out)
    return out


def summarise(record: RunRecord) -> dict[str, Any]:
    """What leaderboards and studies read of a record: its run id, its row
    (:func:`run_row`), its metrics (:func:`record_metrics`) and whether it was scored on a
    sampled representation. JSON-ready: the record index keeps it (NaN for missing numbers)."""
    return {"run_id": record["run_id"], "row": run_row(record),
            "metrics": record_metrics(record), "sampled": is_sampled(record)}  # fmt: skip


def summary_of(record: RunRecord) -> dict[str, Any]:
    """The summary ``aggregate.load_records`` kept with the record, or a new one."""
    return record.get(SUMMARY_KEY) or summarise(record)


def score_columns(frame: pd.DataFrame) -> list[str]:
    """The ``<metric>.<score>`` columns (no other column holds a dot)."""
    return [c for c in frame.columns if "." in c and not c.startswith("_")]


def runs_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Records as a runs frame with typed columns (the private key columns included)."""
    import pandas as pd

    rows = [summary_of(r)["row"] for r in records]
    frame = pd.DataFrame(rows)
    for col in BASE + TAIL + PRIVATE:
        if col not in frame:
            frame[col] = pd.Series([None] * len(frame), dtype=object)
    scores = sorted(score_columns(frame))
    data = sorted(c for c in frame.columns if c.startswith("dataset_"))
    fixed = set(BASE + TAIL + PRIVATE + scores + data)
    params = sorted(c for c in frame.columns if c not in fixed)
    frame = frame[BASE + data + params + scores + TAIL + PRIVATE].copy()
    frame["created"] = pd.to_datetime(frame["created"], utc=True, errors="coerce", format="ISO8601")
    for col in ("seed", "steps", "batch_size"):
        frame[col] = pd.array(
            [None if v is None or v != v else int(v) for v in frame[col]], dtype="Int64"
        )
    for col in [*scores, "recon_loss", "kl", "fit_seconds", "metric_seconds"]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    for col in [*data, *params]:
        frame[col] = _typed(frame[col])
    return frame


def _typed(column: pd.Series) -> pd.Series:
    """A hyperparameter column as numbers when every value present is a number, else as is."""
    import pandas as pd

    present = [v for v in column if v is not None and not (isinstance(v, float) and v != v)]
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        if all(float(v).is_integer() for v in present):  # (pandas made 10 into 10.0)
            values = [None if v is None or v != v else int(v) for v in column]
            return pd.Series(pd.array(values, dtype="Int64"), index=column.index)
        return pd.to_numeric(column, errors="coerce").astype("float64")
    return column.astype(object).where(column.notna(), None)


def public(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in frame.columns if c.startswith("_")])


def long_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run x score: the run's columns, then ``metric``, ``score``, ``value``."""
    scores = score_columns(frame)
    ids = [c for c in frame.columns if c not in scores]
    long = frame.melt(id_vars=ids, value_vars=scores, var_name="_column", value_name="value")
    long = long.dropna(subset=["value"])
    parts = [str(c).split(".", 1) for c in long["_column"]]
    long.insert(len(ids), "metric", [p[0] for p in parts])
    long.insert(len(ids) + 1, "score", [p[1] for p in parts])
    long = long.drop(columns="_column").sort_values(["run_id", "metric", "score"], kind="stable")
    return long.reset_index(drop=True)


def load_runs(results_dir: str | os.PathLike = "results", long: bool = False) -> pd.DataFrame:
    """Every run record under ``results_dir``: one row per run (``long``: per run x score).

    Unreadable records are skipped with a warning that names each one and counts them; a
    folder with no records gives an empty frame with the same columns, and a warning.
    """
    records, skipped = iter_records(Path(results_dir))
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} unreadable record(s): " + "; ".join(skipped), stacklevel=2
        )
    if not records:
        warnings.warn(f"no run records under {Path(results_dir) / 'runs'}", stacklevel=2)
    frame = public(runs_frame(records))
    return long_runs(frame) if long else frame
