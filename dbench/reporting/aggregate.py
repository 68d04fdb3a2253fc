"""Leaderboards: every run record -> one row per configuration, mean +- std over seeds.

A configuration is (dataset, data source, data checksum and resolved dataset kwargs, model,
resolved hyperparameters, budget, metric protocol: name, version and resolved settings); see
:mod:`dbench.reporting.identity`. Seeds of one configuration average together; anything else
never does: a run trained for 1,000 steps and one trained for 300,000 are different entries,
and so are scores measured with different metric settings or metric versions, or on blobs of
another width (Locatello et al. 2019 report every score as a distribution over seeds, never
one run, and never pooled across protocols).

Rows are ranked by the headline score (``primary``) of the chosen metric, in the direction
the metric declares (``lower_is_better``), both read from the records' ``metrics`` meta, and
ranks count within one dataset (one table): scores on different data are not one race.
Rendering lives in :mod:`dbench.reporting.tables` (and the tidy CSV/JSON in
:mod:`dbench.reporting.tidy`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbench.engine.store import RunRecord
from dbench.errors import UserError
from dbench.reporting import record_index
from dbench.reporting.identity import key_text, metric_settings, model_defaults
from dbench.reporting.labels import config_label
from dbench.reporting.runs import (
    BASE,
    PRIVATE,
    RESERVED,
    TAIL,
    param_column,
    runs_frame,
    summary_of,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: what tells configurations apart: the configuration key (the run identity without the
#: seed, :mod:`dbench.engine.identity`); the others are parts of it, kept for display
GROUP_KEYS = ["dataset", "_data", "model", "_config"]
# Metric preferred for ranking when none is named: Higgins et al. 2017's metric, dbench's headline.
DEFAULT_METRIC = "higgins"
EMPTY_COLUMNS = ["rank", "dataset", "source", "model", "label", "steps", "batch_size",
                 "precision", "n", "seeds", "run_ids"]  # fmt: skip


# -- loading ---------------------------------------------------------------------------------
def load_records(
    results_dir: str | os.PathLike, model_defaults: bool = True
) -> tuple[list[RunRecord], list[str]]:
    """Usable records and one message per skipped file (unreadable, or not a record).

    Read through the record index (:mod:`dbench.reporting.record_index`): each record comes
    with its summary (its row for the runs frame), and other fields are read from its file
    when used. ``model_defaults``: also resolve the models' registered defaults, which the
    leaderboard's labels need (a study does not)."""
    return record_index.load(Path(results_dir), model_defaults=model_defaults)


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
    # A study's records share a few metrics blocks (the record index keeps each once): each
    # distinct block is read once, its headline counted once per record that holds it.
    blocks: dict[int, list] = {}  # id -> [block, count], in the order first seen
    for record in records:
        block = summary_of(record)["metrics"]
        blocks.setdefault(id(block), [block, 0])[1] += 1
    for block, count in blocks.values():
        for name, info in block.items():
            names = scores.setdefault(name, [])
            names.extend(s for s in info["scores"] if s not in names)
            if info["primary"]:
                primaries.setdefault(name, Counter())[info["primary"]] += count
            lower.setdefault(name, set()).update(info["lower_is_better"])
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


def filtered_runs(
    records: list[RunRecord], dataset: str | None, model: str | None, metric: str | None
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Runs frame of the records that pass the filters, and the meta of their metrics."""
    # a RUN-sampled sibling (score --representation sampled) is no run of its own: study reads it
    records = [r for r in records if not summary_of(r)["sampled"]]
    rows = [summary_of(r)["row"] for r in records]  # row dataset, model: the config's
    records = [
        r
        for r, row in zip(records, rows, strict=True)
        if (dataset is None or row["dataset"] == dataset)
        and (model is None or row["model"] == model)
    ]
    meta = metric_meta(records)
    if metric is not None:
        if metric not in meta:
            scored = ", ".join(sorted(meta)) or "none"
            raise UserError(f"no run here was scored with metric {metric!r} (scored: {scored})")
        records = [r for r in records if metric in summary_of(r)["metrics"]]
    frame = one_record_per_run(runs_frame(records))
    frame, meta = split_protocols(frame, meta)
    frame.attrs["metrics"] = meta
    return frame, meta


def one_record_per_run(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs with one record each. Two records of one run (same identity: a record copied under
    another name, or one from before identities were resolved beside its successor) would
    count a seed twice: the newest is kept, and stderr says which was left out and why."""
    if runs.empty or not runs["_run"].duplicated().any():
        return runs
    ordered = runs.sort_values(["created", "run_id"], ascending=[False, True], kind="stable")
    dropped = ordered[ordered["_run"].duplicated(keep="first")]
    kept = ordered.drop_duplicates("_run", keep="first")
    for _, row in dropped.iterrows():
        twin = kept.loc[kept["_run"] == row["_run"], "run_id"].iloc[0]
        warnings.warn(
            f"records {twin} and {row['run_id']} are the same run ({row['model']} on "
            f"{row['dataset']}, seed {row['seed']}, identical configuration): kept {twin} "
            f"(the newer), left out {row['run_id']}",
            stacklevel=3,
        )
    return kept.sort_index()


def _default_protocol(metric: str) -> dict[str, Any] | None:
    """The registered metric's protocol with its default settings (None if not registered)."""
    try:
        from dbench.registry import METRICS

        version = METRICS.get(metric).version
    except Exception:  # noqa: BLE001 - an unregistered plugin metric
        return None
    return {"version": version, "settings": metric_settings(metric, {})}


def split_protocols(
    runs: pd.DataFrame, meta: dict[str, dict[str, Any]]
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Scores of one metric measured under different protocols (settings or versions) never
    average: the most common protocol (on a tie, the metric's defaults) keeps the metric's
    name, each other one becomes its own
    metric ``<metric>#2``, ``#3``, ... (said in the table's caption). Afterwards every run's
    ``_protocol`` is the one protocol of each column it has, so it no longer splits rows."""
    import numpy as np

    if runs.empty:
        return runs, meta
    runs, meta = runs.copy(), dict(meta)
    # a study's runs share a few protocols: each distinct text is parsed and keyed once
    texts = list(runs["_protocol"])
    protos = {t: json.loads(t) for t in dict.fromkeys(texts)}
    for metric in sorted(meta):
        kinds = {t: key_text(p[metric]) if metric in p else None for t, p in protos.items()}
        keys = [kinds[t] for t in texts]
        counts = Counter(k for k in keys if k is not None)
        if len(counts) < 2:
            continue
        default = key_text(_default_protocol(metric))
        order = sorted(counts, key=lambda k: (-counts[k], k != default, k))
        for number, kind in enumerate(order[1:], start=2):
            alias = f"{metric}#{number}"
            mask = np.array([k == kind for k in keys])
            for score in meta[metric]["scores"]:
                col = f"{metric}.{score}"
                if col in runs:
                    runs[f"{alias}.{score}"] = runs[col].where(mask)
                    runs[col] = runs[col].where(~mask)
            meta[alias] = {**meta[metric], "protocol_of": metric}
            for t, p in protos.items():
                if kinds[t] == kind:
                    p[alias] = p.pop(metric)
    board_protocol = {}
    for p in protos.values():  # after the split, one protocol per name: order is moot
        board_protocol.update(p)
    runs["_protocol"] = key_text(board_protocol)  # one protocol per column, board-wide
    return runs, meta


# -- aggregation -----------------------------------------------------------------------------
def leaderboard(
    results_dir: str | os.PathLike = "results",
    dataset: str | None = None,
    model: str | None = None,
    metric: str | None = None,
) -> pd.DataFrame:
    """Mean, std and n over seeds of every score, one row per configuration, ranked per dataset.

    Columns: ``rank`` (1..n within each dataset), ``dataset``, ``source``, the dataset's
    resolved kwargs (``dataset_<name>``), ``model``, ``label`` (the model and the
    hyperparameters that set it apart), each resolved hyperparameter as its own column,
    ``steps``, ``batch_size``, ``precision`` (of training; None for models that do not
    train with torch), ``n`` (runs), ``seeds``, ``run_ids`` and for each score
    ``<metric>.<score>`` the columns ``.mean``, ``.std`` (sample std; NaN for one run) and
    ``.n``; ``recon_loss_mean`` and ``recon_loss_std``: the end-of-training reconstruction
    loss (NaN for models without one). Private ``_``-prefixed columns hold the configuration
    keys. ``attrs`` hold
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


def headline_columns(board: pd.DataFrame) -> list[str]:
    """``<metric>.<primary>`` of every metric on the board."""
    meta = board.attrs.get("metrics", {})
    columns = [f"{m}.{meta[m]['primary']}" for m in sorted(meta)]
    return [c for c in columns if f"{c}.mean" in board]


def param_columns(runs: pd.DataFrame) -> list[str]:
    """The hyperparameter columns of a runs frame or a board."""
    fixed = set(BASE + TAIL + PRIVATE + EMPTY_COLUMNS) | RESERVED
    return [
        c
        for c in runs.columns
        if c not in fixed and "." not in c and not c.startswith(("_", "dataset_"))
    ]


def aggregate(
    runs: pd.DataFrame, meta: dict[str, dict[str, Any]], metric: str | None = None
) -> pd.DataFrame:
    """Group a runs frame (see :func:`filtered_runs`) over seeds and rank it per dataset."""
    import pandas as pd

    rank_metric = metric or (DEFAULT_METRIC if DEFAULT_METRIC in meta else min(meta, default=None))
    # one metric: its columns, including those of its other protocols (``higgins#2``)
    shown = {m: v for m, v in meta.items() if metric in (None, m, v.get("protocol_of"))}
    columns = score_columns(runs, shown)
    if runs.empty:
        board = pd.DataFrame(columns=EMPTY_COLUMNS)
        board.attrs.update(rank_by=None, lower_is_better=False, metrics=shown, skipped=[])
        return board

    data_cols = [c for c in runs.columns if c.startswith("dataset_")]
    params = param_columns(runs)
    # pandas deep-copies ``attrs`` on every operation: none while grouping (they are the
    # board's, set below), and one vectorised pass over the score columns.
    runs = runs.copy()
    runs.attrs = {}
    grouped = runs.groupby(GROUP_KEYS, sort=False, dropna=False)
    values = [*columns, "recon_loss"]
    stats = grouped[values].agg(["mean", "std", "count"]).to_dict("index")  # key -> {(col, stat)}
    seeds = grouped["seed"].agg(lambda s: ",".join(str(v) for v in sorted(s.dropna().astype(int))))
    run_ids = grouped["run_id"].agg(",".join)
    sizes = grouped.size()
    rows = []
    firsts = runs.drop_duplicates(GROUP_KEYS).to_dict("records")  # in the groups' order
    for key, first in zip(sizes.index, firsts, strict=True):
        own = {param_column(k) for k in json.loads(first["_params"])}
        row: dict[str, Any] = {"dataset": first["dataset"], "source": first["source"]}
        row.update({c: first[c] for c in data_cols})
        row["model"] = first["model"]
        row.update({c: (first[c] if c in own else None) for c in params})
        row.update(steps=first["steps"], batch_size=first["batch_size"])
        row.update(precision=first["precision"], n=int(sizes[key]))  # one per group (_config)
        row["seeds"], row["run_ids"] = seeds[key], run_ids[key]
        stat = stats[key]
        for col in columns:
            count = int(stat[(col, "count")])
            row[f"{col}.mean"] = stat[(col, "mean")] if count else math.nan
            row[f"{col}.std"] = stat[(col, "std")] if count > 1 else math.nan
            row[f"{col}.n"] = count
        recon = int(stat[("recon_loss", "count")])  # end of training (--training)
        row["recon_loss_mean"] = stat[("recon_loss", "mean")] if recon else math.nan
        row["recon_loss_std"] = stat[("recon_loss", "std")] if recon > 1 else math.nan
        row.update({c: first[c] for c in PRIVATE})
        rows.append(row)
    board = pd.DataFrame(rows)
    for col in params:  # keep the runs frame's types (numbers stay numbers)
        board[col] = board[col].astype(runs[col].dtype) if runs[col].dtype != object else board[col]
    for col in ("steps", "batch_size"):
        board[col] = board[col].astype("Int64")
    board["_table"] = table_key(board)
    board, rank_by, lower = _rank(board, meta, rank_metric, params)
    board.insert(board.columns.get_loc("model") + 1, "label", config_labels(board))
    board.attrs.update(rank_by=rank_by, lower_is_better=lower, metrics=shown, skipped=[])
    return board


def table_key(frame: pd.DataFrame) -> pd.Series:
    """Which table (dataset and data variant) each row of a runs frame or board belongs to."""
    return frame["dataset"] + "\x1f" + frame["_data"]


def _sort_key(column: pd.Series) -> pd.Series:
    """Numbers sort as numbers (beta 1, 4, 16), anything else as text; missing values last."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.astype("float64")
    return column.map(lambda v: "\uffff" if v is None or v is pd.NA else str(v))


def _rank(
    board: pd.DataFrame, meta: dict[str, Any], rank_metric: str | None, params: list[str]
) -> tuple[pd.DataFrame, str | None, bool]:
    """Tables in dataset order; inside each, best first, ties by model and hyperparameters."""
    import pandas as pd

    keys = {f"_sort{i}": _sort_key(board[c]) for i, c in enumerate(params)}
    board = board.assign(**keys)
    by, ascending = ["dataset", "_data_text", "_data"], [True, True, True]
    rank_by, lower = None, False
    if rank_metric is not None:
        primary = meta[rank_metric]["primary"]
        rank_by = f"{rank_metric}.{primary}"
        lower = primary in meta[rank_metric]["lower_is_better"]
        by.append(f"{rank_by}.mean")
        ascending.append(lower)
    by += ["model", *keys, "steps", "batch_size", "_protocol"]
    ascending += [True] * (len(by) - len(ascending))
    board = board.sort_values(by, ascending=ascending, na_position="last", kind="stable")
    board = board.drop(columns=list(keys)).reset_index(drop=True)
    if rank_by is not None:
        ranks = board.groupby("_table")[f"{rank_by}.mean"].rank(method="min", ascending=lower)
        board.insert(0, "rank", ranks.astype("Int64"))
    else:
        board.insert(0, "rank", pd.array([pd.NA] * len(board), dtype="Int64"))
    return board, rank_by, lower


def label_split(model: str, params: dict[Any, dict[str, Any]]) -> tuple[dict, dict]:
    """For one model's rows (``{row: resolved params}``): per row the hyperparameters that set
    it apart (they vary among the rows, or differ from the model's defaults), and the
    non-default ones all rows share (said once, when there are several rows)."""
    names = sorted({k for p in params.values() for k in p})
    varying = {k for k in names if len({json.dumps(p.get(k)) for p in params.values()}) > 1}
    defaults = model_defaults(model)
    shown, shared = {}, {}
    for i, p in params.items():
        changed = set() if defaults is None else {
            k for k in p if k not in defaults or defaults[k] != p[k]
        }  # fmt: skip
        shown[i] = {k: p[k] for k in sorted(varying | changed) if k in p}
        shared = {k: p[k] for k in sorted(changed - varying)}
    return shown, shared if len(params) > 1 else {}


def config_labels(board: pd.DataFrame, compact: bool = False) -> list[str]:
    """``model`` plus the hyperparameters that set a row apart: those that vary among the
    model's rows in its table, and those that differ from the model's defaults (``compact``:
    without the non-default ones all of the model's rows share)."""
    labels = {}
    for (_, model), rows in board.groupby(["_table", "model"], sort=False):
        shown, shared = label_split(model, {i: json.loads(p) for i, p in rows["_params"].items()})
        for i, params in shown.items():
            kept = {k: v for k, v in params.items() if not (compact and k in shared)}
            labels[i] = config_label(model, kept)
    return [labels[i] for i in board.index]
