"""Published tables side by side with measured leaderboards (``--compare higgins2017``).

A published table is a CSV in ``baselines/`` (or any path) with one row per published method:
its score, the dbench model and kwargs that reproduce it, the dataset and the metric column.
:func:`comparison` is what the CLI and the HTML report both call.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbench.errors import UserError
from dbench.reporting.labels import budget_text, config_label, dataset_name
from dbench.reporting.tables import mean_std

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

PUBLISHED = {"higgins2017": "higgins2017_table1.csv"}
#: Other protocols of a published table's metric, shown beside it when runs scored them:
#: metric name -> (column label, one-line description for the note under the table).
ALSO = {
    "higgins": {
        "higgins_noshape": (
            "shape left out",
            "higgins: y drawn from all five dSprites factors (disentanglement_lib's protocol, "
            "chance 1/5); higgins_noshape: shape left out of y, as Higgins et al. describe "
            "(chance 1/4)",
        )
    }
}


def comparison(runs: pd.DataFrame, meta: dict[str, Any], name: str | os.PathLike):
    """The published table ``name`` beside the runs' leaderboard on the table's own metric.

    ``attrs["scored"]`` is False when no run was scored with that metric (every published row
    then reads "not run"); ``attrs["note"]`` says so, or that no run is on the table's dataset
    (``--compare higgins2017 --dataset blobs``: the table is for dSprites), else is empty.
    """
    from dbench.reporting.aggregate import aggregate

    metric = published_metric(name)
    scored = metric in meta
    others = {m: aggregate(runs, meta, m) for m in ALSO.get(metric, {}) if m in meta}
    table = compare_published(aggregate(runs, meta, metric if scored else None), name, others)
    table.attrs["scored"] = scored
    wanted = table.attrs["datasets"]
    have = sorted(set(runs["dataset"])) if "dataset" in runs else []
    note = ""
    if not set(wanted) & set(have):
        note = (
            f"the published table {name} is for {_names(wanted)}; no run here is on it "
            f"(runs here: {', '.join(have) or 'none'})"
        )
    elif not scored:
        note = f"no run here was scored with {metric}, the metric of the published table {name}"
    table.attrs["note"] = note
    return table


def _names(datasets: list[str]) -> str:
    return " and ".join(f"{dataset_name(d)} ({d})" if dataset_name(d) != d else d
                        for d in datasets)  # fmt: skip


def published_path(name: str | os.PathLike) -> Path:
    """A published table by short name (``higgins2017``) or a CSV path."""
    text = str(name)
    if text.endswith(".csv"):
        path = Path(text)
    elif text in PUBLISHED:
        # baselines/ is data beside the package, found from the source checkout.
        path = Path(__file__).resolve().parents[2] / "baselines" / PUBLISHED[text]
    else:
        raise UserError(f"unknown published table {text!r} (known: {', '.join(PUBLISHED)})")
    if not path.is_file():
        raise UserError(f"published table not found: {path}")
    return path


def load_published(name: str | os.PathLike) -> pd.DataFrame:
    import pandas as pd

    path = published_path(name)
    try:
        table = pd.read_csv(path, keep_default_na=False, na_values={"score_std": [""]})
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read published table {path}: {exc}") from None
    needed = {"method", "dbench_model", "dbench_kwargs", "dataset", "metric", "score", "source"}
    if not needed <= set(table.columns):
        raise UserError(f"{path} lacks columns: {', '.join(sorted(needed - set(table.columns)))}")
    return table


def published_metric(name: str | os.PathLike) -> str:
    """The metric a published table reports (``higgins`` for ``higgins.eval_accuracy``)."""
    return str(load_published(name)["metric"].iloc[0]).split(".", 1)[0]


def compare_published(
    board: pd.DataFrame,
    name: str | os.PathLike = "higgins2017",
    others: dict[str, pd.DataFrame] | None = None,
):
    """Published vs measured, side by side: one row per (published method, dbench config).

    ``board`` is a leaderboard (any filters); a published row matches a configuration when
    the model names agree and every published kwarg equals the run's resolved hyperparameter
    (``betavae`` with ``beta=4``). Percent tables show measured scores in percent too.
    ``others``: leaderboards ranked on the other protocols of the table's metric (:data:`ALSO`);
    each matched configuration shows their scores in a column of their own.
    """
    import pandas as pd

    published = load_published(name)
    measured = set(board["dataset"]) if "dataset" in board else set()
    metric_name = str(published["metric"].iloc[0]).split(".", 1)[0]
    off_paper = {m: protocol_change(board, m) for m in (metric_name, *ALSO.get(metric_name, {}))}
    rows = []
    for _, pub in published.iterrows():
        scale = 100.0 if pub.get("unit") == "percent" else 1.0
        base = {
            "method": pub["method"],
            "published": mean_std(float(pub["score"]), _float(pub.get("score_std")), digits=2),
            "published_mean": float(pub["score"]),
            "published_std": _float(pub.get("score_std")),
        }
        matches = _matches(board, pub)
        if matches.empty:
            missing = "not run" if pub["dbench_model"] else pub.get("note") or "not in dbench"
            if pub["dbench_model"] and pub["dataset"] not in measured:
                missing = f"not run on {pub['dataset']}"
            rows.append(
                {
                    **base,
                    "dbench": _published_label(pub),
                    "budget": "",
                    "n": 0,
                    "measured": "–",
                    "measured_mean": math.nan,
                    "measured_std": math.nan,
                    "difference": math.nan,
                    "note": missing,
                }
            )
            continue
        col = pub["metric"]
        metric, _, score = col.partition(".")
        for _, row in matches.iterrows():
            mean = row[f"{col}.mean"] * scale
            std = row[f"{col}.std"] * scale
            extra = {}
            for other, (label, _) in ALSO.get(metric, {}).items():
                same = _same_config((others or {}).get(other), row, f"{other}.{score}")
                if same is not None:
                    key = f"{other}.{score}"
                    mark = " *" if off_paper.get(other) else ""
                    extra[label] = mean_std(
                        same[f"{key}.mean"] * scale, same[f"{key}.std"] * scale, digits=2
                    ) + f" (n={int(same[f'{key}.n'])}){mark}"
                    # the published number beside this protocol too (issue 29)
                    extra[f"difference ({label})"] = (
                        same[f"{key}.mean"] * scale - base["published_mean"]
                    )
            rows.append(
                {
                    **base,
                    **extra,
                    "dbench": row["label"],
                    "budget": budget_text(row["_budget"]),
                    "n": int(row[f"{col}.n"]),
                    "measured": mean_std(mean, std, digits=2)
                    + (" *" if off_paper.get(metric) else ""),
                    "measured_mean": mean,
                    "measured_std": std,
                    "difference": mean - base["published_mean"],
                    "note": pub.get("note", ""),
                }
            )
    table = pd.DataFrame(rows)
    table.attrs["source"] = sorted(set(published["source"]))
    table.attrs["metric"] = sorted(set(published["metric"]))
    table.attrs["datasets"] = sorted(set(published["dataset"]))
    metric = str(published["metric"].iloc[0]).split(".", 1)[0]
    also = ALSO.get(metric, {})
    table.attrs["also"] = [label for label, _ in also.values() if label in table]
    table.attrs["protocols"] = [text for label, text in also.values() if label in table]
    changes = [f"{m}: {text}" for m, text in off_paper.items() if text]
    table.attrs["off_paper"] = (
        "* scored with settings other than the paper's protocol (" + "; ".join(changes) + ")"
        if changes
        else ""
    )
    return table


def protocol_change(board: pd.DataFrame, metric: str) -> str:
    """How the protocol of ``metric``'s column on ``board`` differs from the paper's (the
    metric's reference settings, its defaults): ``num_train=500 (paper 10000)``; "" when it
    does not, or the board has no such column."""
    from dbench.engine.identity import metric_settings

    if board.empty or "_protocol" not in board:
        return ""
    proto = json.loads(board["_protocol"].iloc[0]).get(metric)
    if not proto:
        return ""
    paper = metric_settings(metric, {})
    used = proto.get("settings") or {}
    changed = [f"{k}={used.get(k)} (paper {v})" for k, v in sorted(paper.items())
               if used.get(k) != v]  # fmt: skip
    return ", ".join(changed)


def _same_config(board: Any, row: Any, column: str) -> Any:
    """The row of ``board`` for the configuration of ``row`` (same dataset, source, model,
    resolved hyperparameters and budget) with a score in ``column``, or None."""
    if board is None or board.empty or f"{column}.mean" not in board:
        return None
    keys = [k for k in ("dataset", "source", "model", "_params", "_budget") if k in board]
    mask = board[f"{column}.mean"].notna()
    for key in keys:
        mask &= board[key] == row.get(key)
    return board[mask].iloc[0] if mask.any() else None


def _published_label(pub: Any) -> str:
    if not pub["dbench_model"]:
        return "–"
    return config_label(pub["dbench_model"], json.loads(pub["dbench_kwargs"] or "{}"))


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _matches(board: pd.DataFrame, pub: Any) -> pd.DataFrame:
    col = f"{pub['metric']}.mean"
    if not pub["dbench_model"] or board.empty or col not in board:
        return board.iloc[:0]
    wanted = json.loads(pub["dbench_kwargs"] or "{}")

    def agrees(row: Any) -> bool:
        params = json.loads(row["_params"]) if isinstance(row.get("_params"), str) else {}
        return all(_same(params.get(k), v) for k, v in wanted.items())

    mask = (board["model"] == pub["dbench_model"]) & (board["dataset"] == pub["dataset"])
    mask &= board[col].notna()
    mask &= board.apply(agrees, axis=1) if mask.any() else mask
    return board[mask]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b))
    return a == b


def comparison_display(table: pd.DataFrame) -> pd.DataFrame:
    """Display strings: published and measured as mean ± std (the published std where the
    paper gives one), the measured configuration, its budget, n and the difference."""
    also = list(table.attrs.get("also", []))
    diffs = [f"difference ({label})" for label in also if f"difference ({label})" in table]
    cols = ["method", "published", "dbench", "budget", "n", "measured", "difference"]
    cols += [c for label in also for c in (label, f"difference ({label})") if c in table]
    shown = table[[*cols, "note"]].copy()
    for label in also:
        shown[label] = shown[label].fillna("–")
    for col in ["difference", *diffs]:
        shown[col] = [("" if d != d else f"{d:+.2f}") for d in shown[col]]
    shown["n"] = shown["n"].astype(str)
    return shown.rename(
        columns={"published": "published (mean ± std)", "measured": "measured (mean ± std)"}
    )


def comparison_caption(table: pd.DataFrame) -> str:
    metric = ", ".join(table.attrs.get("metric", []))
    source = "; ".join(table.attrs.get("source", []))
    datasets = _names(table.attrs.get("datasets", []))
    text = f"published vs measured {metric} (%) on {datasets}, mean ± std over seeds. "
    text += f"Source: {source}"
    for protocol in table.attrs.get("protocols", []):
        text += f". Protocols: {protocol}"
    if table.attrs.get("off_paper"):
        text += f". {table.attrs['off_paper']}"
    note = table.attrs.get("note")
    return f"{text}. Note: {note}" if note else text
