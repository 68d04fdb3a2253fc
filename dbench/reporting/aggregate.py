"""Leaderboards: every run record -> one row per configuration, mean +- std over seeds.

A configuration is (dataset, data source, model, hyperparameters, budget, metric protocol).
Seeds of one configuration average together; anything else never does: a run trained for
1,000 steps and one trained for 300,000 are different entries, and so are scores measured with
different metric settings or metric versions (Locatello et al. 2019 report every score as a
distribution over seeds, never one run, and never pooled across protocols).

Rows are ranked by the headline score (``primary``) of the chosen metric, in the direction
the metric declares (``lower_is_better``), both read from the records' ``metrics`` meta.
Rendering (terminal, CSV, Markdown, LaTeX, HTML) lives in :mod:`dbench.reporting.tables`.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbench.engine.store import RunRecord, iter_records
from dbench.errors import UserError
from dbench.reporting.labels import config_label
from dbench.reporting.runs import flatten

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

GROUP_KEYS = ["dataset", "source", "model", "kwargs", "budget", "protocol"]
# Metric preferred for ranking when none is named: Higgins et al. 2017's metric, dbench's headline.
DEFAULT_METRIC = "higgins"


# -- loading ---------------------------------------------------------------------------------
def load_records(results_dir: str | os.PathLike) -> tuple[list[RunRecord], list[str]]:
    """Readable records and one message per skipped file (unreadable, or not a record)."""
    records, skipped = iter_records(Path(results_dir))
    usable = []
    for record in records:
        problem = _record_problem(record)
        if problem:
            skipped.append(f"run record {record.get('run_id', '?')}: {problem}")
        else:
            usable.append(record)
    return usable, skipped


def _record_problem(record: RunRecord) -> str | None:
    """Why a parsed record cannot enter a table, or None (older optional fields may be absent)."""
    # Structure is validated when records are read (engine.store.record_problem); this
    # catches what only building a row reveals.
    try:
        run_row(record)  # any other malformed block (a string where a mapping belongs)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return f"malformed record ({type(exc).__name__}: {exc})"
    return None


def warn_skipped(skipped: list[str]) -> None:
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} unreadable record(s): " + "; ".join(skipped), stacklevel=3
        )


def metric_meta(records: list[RunRecord]) -> dict[str, dict[str, Any]]:
    """Per metric: headline score, lower-is-better scores and versions seen.

    Records written before the ``metrics`` meta existed fall back to the registered metric's
    declaration, then to its only score (or ``eval_accuracy``/the first score) as headline.
    """
    primaries: dict[str, Counter] = {}
    lower: dict[str, set[str]] = {}
    scores: dict[str, list[str]] = {}
    for record in records:
        meta = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
        for name, values in record["scores"].items():
            names = scores.setdefault(name, [])
            names.extend(s for s in values if s not in names)
            info = meta.get(name) if isinstance(meta.get(name), dict) else {}
            if info.get("primary"):
                primaries.setdefault(name, Counter())[info["primary"]] += 1
            lower.setdefault(name, set()).update(info.get("lower_is_better") or ())
    out = {}
    for name, names in scores.items():
        primary = primaries[name].most_common(1)[0][0] if name in primaries else None
        lib = lower.get(name, set())
        if primary is None:
            primary, lib = _registered_meta(name, names, lib)
        out[name] = {"primary": primary, "lower_is_better": sorted(lib), "scores": names}
    return out


def _registered_meta(name: str, names: list[str], lib: set[str]) -> tuple[str, set[str]]:
    try:
        from dbench.registry import METRICS

        info = METRICS.get(name).info()
    except Exception:  # an unregistered or broken plugin: its records still load
        info = {}
    primary = info.get("primary")
    if primary not in names:
        primary = "eval_accuracy" if "eval_accuracy" in names else names[0]
    return primary, lib | set(info.get("lower_is_better") or ())


# -- one row per run -------------------------------------------------------------------------
def run_row(record: RunRecord) -> dict[str, Any]:
    """A record as one flat row: results.flatten plus what tables and plots also need."""
    row = flatten(record)
    config = record["config"]
    model = record.get("model") if isinstance(record.get("model"), dict) else {}
    kwargs = config.get("model_kwargs") or {}
    # Resolved hyperparameters (defaults filled in) when the record has them.
    params = {**(model.get("params") or {}), **kwargs}
    budget = record.get("budget") or config.get("budget") or {}
    row["budget"] = json.dumps(budget, sort_keys=True)
    row["kwargs"] = json.dumps(kwargs, sort_keys=True)
    row["params"] = json.dumps(params, sort_keys=True, default=str)
    row["source"] = row.get("source") or "unknown"
    row["beta"] = _number(params.get("beta"))
    row["protocol"] = _protocol(record)
    training = record.get("training") if isinstance(record.get("training"), dict) else {}
    row["recon_loss"] = _number(_last(training.get("recon_loss")))
    row["kl"] = _kl_total(training)
    row["label"] = config_label(row["model"], kwargs)
    for key in [k for k in row if "." in k and k.split(".", 1)[0] in record["scores"]]:
        row[key] = _number(row[key])
    return row


def _protocol(record: RunRecord) -> str:
    """What must match for two runs' scores to be comparable: metric versions and settings
    (of every metric the run scored; :func:`aggregate` narrows it to the ranked metric)."""
    meta = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    settings = record["config"].get("metric_kwargs") or {}
    names = sorted(record["scores"])
    proto = {}
    for name in names:
        info = meta.get(name) if isinstance(meta.get(name), dict) else {}
        # Each score's own settings (a rescore may have changed them); older records: config's.
        own = info.get("settings", settings.get(name, {}))
        proto[name] = {"version": info.get("version"), "settings": own}
    return json.dumps(proto, sort_keys=True, default=str)


def _protocol_of(protocol: str, metric: str) -> str:
    """The part of a runs-frame ``protocol`` (JSON) that concerns one metric."""
    proto = json.loads(protocol)
    return json.dumps({metric: proto[metric]} if metric in proto else {}, sort_keys=True)


def _last(value: Any) -> Any:
    # fit_info_ may keep a history (a list per step/epoch): the final value describes the model.
    if isinstance(value, (list, tuple)):
        return value[-1] if value else None
    return value


def _kl_total(training: dict[str, Any]) -> float:
    per_dim = training.get("kl_per_dim")
    if isinstance(per_dim, (list, tuple)) and per_dim:
        values = [_number(v) for v in per_dim]
        return float(sum(values))
    return _number(_last(training.get("kl")))


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def filtered_runs(
    records: list[RunRecord], dataset: str | None, model: str | None, metric: str | None
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Runs frame of the records that pass the filters, and the meta of their metrics."""
    import pandas as pd

    records = [
        r
        for r in records
        if (dataset is None or r["config"]["dataset"] == dataset)
        and (model is None or r["config"]["model"] == model)
    ]
    meta = metric_meta(records)
    if metric is not None:
        if metric not in meta:
            scored = ", ".join(sorted(meta)) or "none"
            raise UserError(f"no run here was scored with metric {metric!r} (scored: {scored})")
        records = [r for r in records if metric in r["scores"]]
    frame = pd.DataFrame([run_row(r) for r in records])
    frame.attrs["metrics"] = meta
    return frame, meta


# -- aggregation -----------------------------------------------------------------------------
def leaderboard(
    results_dir: str | os.PathLike = "results",
    dataset: str | None = None,
    model: str | None = None,
    metric: str | None = None,
) -> pd.DataFrame:
    """Mean, std and n over seeds of every score, one row per configuration, ranked.

    Columns: ``rank``, the configuration (``dataset, source, model, label, kwargs, budget,
    protocol``), ``n`` (runs), ``seeds``, ``run_ids`` and for each score ``<metric>.<score>``
    the columns ``.mean``, ``.std`` (sample std; NaN for one run) and ``.n``. ``attrs`` hold
    ``rank_by`` (the headline column), ``lower_is_better``, ``metrics`` (meta per metric) and
    ``skipped`` (messages for records that could not be read; each is also warned about).
    """
    records, skipped = load_records(results_dir)
    warn_skipped(skipped)
    runs, meta = filtered_runs(records, dataset, model, metric)
    board = aggregate(runs, meta, metric)
    board.attrs["skipped"] = skipped
    return board


def score_columns(frame: pd.DataFrame, meta: dict[str, dict[str, Any]]) -> list[str]:
    return [f"{m}.{s}" for m in sorted(meta) for s in meta[m]["scores"] if f"{m}.{s}" in frame]


def aggregate(
    runs: pd.DataFrame, meta: dict[str, dict[str, Any]], metric: str | None = None
) -> pd.DataFrame:
    """Group a runs frame (see :func:`filtered_runs`) over seeds and rank it."""
    import pandas as pd

    rank_metric = metric or (DEFAULT_METRIC if DEFAULT_METRIC in meta else min(meta, default=None))
    shown = {metric: meta[metric]} if metric else meta
    columns = score_columns(runs, shown)
    if runs.empty:
        board = pd.DataFrame(columns=["rank", *GROUP_KEYS, "label", "n", "seeds", "run_ids"])
        board.attrs.update(rank_by=None, lower_is_better=False, metrics=shown, skipped=[])
        return board

    if metric:
        # Ranked on one metric, configurations are told apart by that metric's protocol only:
        # a seed that also scored other metrics is still the same configuration.
        runs = runs.assign(protocol=runs["protocol"].map(lambda p: _protocol_of(p, metric)))
    rows = []
    for key, group in runs.groupby(GROUP_KEYS, sort=True, dropna=False):
        row = dict(zip(GROUP_KEYS, key, strict=True))
        row["label"] = group["label"].iloc[0]
        row["params"] = group["params"].iloc[0]
        row["n"] = len(group)
        row["seeds"] = ",".join(str(s) for s in sorted(group["seed"].dropna().astype(int)))
        row["run_ids"] = ",".join(group["run_id"])
        for col in columns:
            values = group[col].dropna() if col in group else group.iloc[:0, 0]
            row[f"{col}.mean"] = values.mean() if len(values) else math.nan
            row[f"{col}.std"] = values.std(ddof=1) if len(values) > 1 else math.nan
            row[f"{col}.n"] = len(values)
        for col in ("recon_loss", "kl", "beta"):
            row[col] = group[col].mean()
        rows.append(row)
    board = pd.DataFrame(rows)

    rank_by, lower = None, False
    if rank_metric is not None:
        primary = meta[rank_metric]["primary"]
        rank_by = f"{rank_metric}.{primary}"
        lower = primary in meta[rank_metric]["lower_is_better"]
        board = board.sort_values(
            [f"{rank_by}.mean", "dataset", "label"],
            ascending=[lower, True, True],
            na_position="last",
            kind="stable",
        )
        # Ranks count within a dataset: scores on different datasets are not one race.
        board.insert(
            0,
            "rank",
            board.groupby("dataset")[f"{rank_by}.mean"]
            .rank(method="min", ascending=lower)
            .astype("Int64"),
        )
    else:
        board.insert(0, "rank", pd.array([pd.NA] * len(board), dtype="Int64"))
    board = board.reset_index(drop=True)
    board.attrs.update(rank_by=rank_by, lower_is_better=lower, metrics=shown, skipped=[])
    return board
