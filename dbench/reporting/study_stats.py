"""The statistics of a study (Locatello et al. 2019, "Challenging Common Assumptions in the
Unsupervised Learning of Disentangled Representations", ICML): pure functions of a *study
frame*, one row per run with the columns ``run_id``, ``seed``, ``method``, ``config`` (the
configuration key), ``strength`` (the name of the method's swept hyperparameter), ``value``
(its value) and one column per score ``<metric>.<score>``.

- :func:`rank_correlations`: Spearman's rho between scores over the runs that have both
  (their Fig. 3), with n;
- :func:`variance_shares`: nested sums of squares, total = between methods + between
  configurations within a method + within a configuration (the seed);
- :func:`model_selection`: per method, the score of the configuration an unsupervised score
  picks, against the oracle pick and the expected value of a random pick (regret);
- :func:`cross_correlations`: rank correlation of each metric with other scores (downstream
  accuracy at 100 and 10,000 labels, their Sec. 5.4).

Each returns a tidy frame; none draws or writes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: fewer runs than this and a rank correlation is not reported (NaN)
MIN_RUNS = 3


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x``, tied values sharing their average rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1, dtype=np.float64)
    _, groups, counts = np.unique(x, return_inverse=True, return_counts=True)
    if len(counts) < len(x):  # ties: each tied value gets its group's mean rank
        sums = np.bincount(groups, weights=ranks)
        ranks = (sums / counts)[groups]
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Spearman's rho of the pairs where both are finite (average ranks for ties), and n.

    NaN when fewer than :data:`MIN_RUNS` pairs remain or either side is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    both = np.isfinite(x) & np.isfinite(y)
    n = int(both.sum())
    if n < MIN_RUNS:
        return math.nan, n
    rx, ry = average_ranks(x[both]), average_ranks(y[both])
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    if denominator == 0:
        return math.nan, n
    return float((rx * ry).sum() / denominator), n


def rank_correlations(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Every ordered pair of ``columns``: ``a``, ``b``, ``rho``, ``n`` (runs having both)."""
    import pandas as pd

    values = {c: frame[c].to_numpy(dtype=np.float64) for c in columns}
    rows = []
    for a in columns:
        for b in columns:
            rho, n = spearman(values[a], values[b])
            rows.append({"a": a, "b": b, "rho": rho, "n": n})
    return pd.DataFrame(rows, columns=["a", "b", "rho", "n"])


def cross_correlations(frame: pd.DataFrame, rows: list[str], targets: list[str]) -> pd.DataFrame:
    """``metric``, ``target``, ``rho``, ``n`` for each of ``rows`` against each target."""
    import pandas as pd

    out = []
    for metric in rows:
        for target in targets:
            rho, n = spearman(frame[metric].to_numpy(), frame[target].to_numpy())
            out.append({"metric": metric, "target": target, "rho": rho, "n": n})
    return pd.DataFrame(out, columns=["metric", "target", "rho", "n"])


def nested_sums(frame: pd.DataFrame, column: str) -> dict[str, float]:
    """Sums of squares of ``column`` around the grand mean, split three ways (they add up):
    between methods, between configurations within their method, within configurations."""
    data = frame[["method", "config", column]].dropna(subset=[column])
    y = data[column].to_numpy(dtype=np.float64)
    if len(y) == 0:
        return {"total": math.nan, "method": math.nan, "config": math.nan, "seed": math.nan}
    method_mean = data.groupby("method")[column].transform("mean").to_numpy()
    config_mean = data.groupby(["method", "config"])[column].transform("mean").to_numpy()
    grand = y.mean()
    return {
        "total": float(((y - grand) ** 2).sum()),
        "method": float(((method_mean - grand) ** 2).sum()),
        "config": float(((config_mean - method_mean) ** 2).sum()),
        "seed": float(((y - config_mean) ** 2).sum()),
    }


def variance_shares(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per score: the share of its variance explained by the method (``method``), by the
    hyperparameter within the method (``hyperparameter``) and left to the seed (``seed``),
    with the counts they rest on. Shares are NaN when the score does not vary at all.

    The sums are :func:`nested_sums`, computed for all columns at once (each over the runs
    that have that score: group means skip missing values)."""
    import pandas as pd

    y = frame[columns].to_numpy(dtype=np.float64)
    have = np.isfinite(y)
    method_mean = frame.groupby("method")[columns].transform("mean").to_numpy(dtype=np.float64)
    groups = frame.groupby(["method", "config"])[columns]
    config_mean = groups.transform("mean").to_numpy(dtype=np.float64)
    counts = have.sum(axis=0)  # a score no run has: grand mean 0, every sum 0, shares NaN
    grand = np.divide(np.where(have, y, 0.0).sum(axis=0), counts,
                      out=np.zeros(len(columns)), where=counts > 0)  # fmt: skip

    def total(values: np.ndarray) -> np.ndarray:
        return np.where(have, values, 0.0).sum(axis=0)

    sums = {
        "total": total((y - grand) ** 2),
        "method": total((method_mean - grand) ** 2),
        "config": total((config_mean - method_mean) ** 2),
        "seed": total((y - config_mean) ** 2),
    }
    # floating-point noise below this is no variance (a constant score)
    tiny = 1e-12 * np.maximum(1.0, total(y * y))
    rows = []
    for i, column in enumerate(columns):
        ok = sums["total"][i] > tiny[i]
        share = {k: float(sums[k][i] / sums["total"][i]) if ok else math.nan
                 for k in ("method", "config", "seed")}  # fmt: skip
        scored = frame.loc[have[:, i], ["method", "config"]]
        rows.append({
            "score": column,
            "method": share["method"],
            "hyperparameter": share["config"],
            "seed": share["seed"],
            "n_runs": int(have[:, i].sum()),
            "n_methods": scored["method"].nunique(),
            "n_configs": len(scored.drop_duplicates()),
            "ss_total": float(sums["total"][i]),
        })  # fmt: skip
    columns_out = ["score", "method", "hyperparameter", "seed", "n_runs", "n_methods",
                   "n_configs", "ss_total"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns_out)


def model_selection(
    frame: pd.DataFrame,
    selectors: dict[str, bool],
    targets: dict[str, bool],
) -> pd.DataFrame:
    """Unsupervised model selection per method (Locatello et al. 2019, Sec. 5.3).

    ``selectors`` and ``targets`` map score columns to "lower is better". For each selector,
    target and method with two configurations or more (both scores' means over seeds known):
    ``selected`` is the target's mean in the configuration the selector's mean ranks best
    (ties: the first configuration in order), ``oracle`` the best target mean, ``random``
    the mean over configurations (the expected value of a random pick); ``regret`` = how
    much worse than the oracle the pick is (in the target's direction, so >= 0),
    ``random_regret`` the same for the random pick."""
    import pandas as pd

    columns = sorted(set(selectors) | set(targets))
    means = frame.groupby(["method", "config"], sort=True)[columns].mean()
    values = frame.groupby(["method", "config"], sort=True)["value"].first()
    rows = []
    for method in means.index.get_level_values("method").unique():
        part, strength = means.loc[method], values.loc[method].to_numpy()
        for selector, s_lower in selectors.items():
            sel = part[selector].to_numpy()
            for target, t_lower in targets.items():
                if target == selector:
                    continue
                tgt = part[target].to_numpy()
                known = np.isfinite(sel) & np.isfinite(tgt)
                if known.sum() < 2:
                    continue
                s, t, v = sel[known], tgt[known], strength[known]
                picked = int(np.argmin(s) if s_lower else np.argmax(s))
                oracle = float(t.min() if t_lower else t.max())
                sign = -1.0 if t_lower else 1.0
                rows.append({
                    "selector": selector,
                    "target": target,
                    "method": method,
                    "n_configs": int(known.sum()),
                    "picked_value": float(v[picked]),
                    "selected": float(t[picked]),
                    "oracle": oracle,
                    "random": float(t.mean()),
                    "regret": sign * (oracle - float(t[picked])),
                    "random_regret": sign * (oracle - float(t.mean())),
                })  # fmt: skip
    columns_out = ["selector", "target", "method", "n_configs", "picked_value", "selected",
                   "oracle", "random", "regret", "random_regret"]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns_out)
    return table.sort_values(["selector", "target", "method"], kind="stable", ignore_index=True)
