"""Leaderboards as tidy data (CSV and JSON): one row per configuration, one value per cell.

Columns: ``rank``, ``dataset``, ``source``, the dataset's resolved kwargs (``dataset_<name>``),
``model``, each hyperparameter as its own column (empty where a model lacks it), ``steps``,
``batch_size``, ``n``, ``seeds``, ``protocol`` (the metric protocol in words), and per score
``<metric>.<score>_mean`` and ``_std`` (``_n`` too when some runs lack the score), then
``run_ids``. ``long=True`` gives one row per configuration x score instead: the identity
columns, then ``metric``, ``score``, ``mean``, ``std``, ``n_score``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from dbench.reporting.aggregate import param_columns
from dbench.reporting.identity import protocol_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

ID_HEAD = ["rank", "dataset", "source"]
ID_TAIL = ["steps", "batch_size", "n", "seeds", "protocol"]


def _scores(board: pd.DataFrame) -> list[str]:
    return [c[: -len(".mean")] for c in board.columns if c.endswith(".mean")]


def identity_columns(board: pd.DataFrame) -> list[str]:
    data = [c for c in board.columns if c.startswith("dataset_")]
    params = [c for c in param_columns(board) if board[c].notna().any()]
    return [*ID_HEAD, *data, "model", *params, *ID_TAIL]


def tidy(board: pd.DataFrame, long: bool = False) -> pd.DataFrame:
    """The leaderboard as a tidy frame (see the module docstring)."""
    import pandas as pd

    frame = board.copy()
    frame["protocol"] = [protocol_text(p) for p in frame.get("_protocol", [])]
    ids = [c for c in identity_columns(frame) if c in frame]
    scores = _scores(frame)
    if long:
        parts = []
        for col in scores:
            metric, _, score = col.partition(".")
            part = frame[ids + ["run_ids"]].copy()
            part.insert(len(ids), "metric", metric)
            part.insert(len(ids) + 1, "score", score)
            part.insert(len(ids) + 2, "mean", frame[f"{col}.mean"].astype("float64"))
            part.insert(len(ids) + 3, "std", frame[f"{col}.std"].astype("float64"))
            part.insert(len(ids) + 4, "n_score", frame[f"{col}.n"].astype("Int64"))
            parts.append(part[part["mean"].notna()])
        columns = [*ids, "metric", "score", "mean", "std", "n_score", "run_ids"]
        if not parts:
            return pd.DataFrame(columns=columns)
        return pd.concat(parts, ignore_index=True)[columns]
    out = frame[ids].copy()
    for col in scores:
        out[f"{col}_mean"] = frame[f"{col}.mean"].astype("float64")
        out[f"{col}_std"] = frame[f"{col}.std"].astype("float64")
        if (frame[f"{col}.n"] != frame["n"]).any():
            out[f"{col}_n"] = frame[f"{col}.n"].astype("Int64")
    out["run_ids"] = frame["run_ids"]
    return out.reset_index(drop=True)


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def json_text(frame: pd.DataFrame) -> str:
    """A JSON list of row objects (missing values are ``null``; seeds and run ids are lists)."""
    frame = frame.copy()
    if "seeds" in frame:
        frame["seeds"] = [[int(s) for s in str(v).split(",") if s] for v in frame["seeds"]]
    if "run_ids" in frame:
        frame["run_ids"] = [[s for s in str(v).split(",") if s] for v in frame["run_ids"]]
    text = frame.to_json(orient="records", double_precision=15, force_ascii=False)
    return json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"
