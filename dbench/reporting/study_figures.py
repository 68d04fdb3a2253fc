"""The figures of a study (:mod:`dbench.reporting.study`), after Locatello et al. 2019:

- ``correlation``: the Spearman rank-correlation matrix of the headline scores (Fig. 3);
- ``per_method``: each headline score's distribution per method, violins with every run as a
  dot (Fig. 6/7 style);
- ``strength_<metric>``: a score against each method's regularisation strength, every seed a
  dot and the mean over seeds a line (Fig. 5 style);
- ``representation_tc``: the total correlation of the mean and of the sampled representation
  against the regularisation strength (Fig. 1).

A figure is drawn only when its analysis has the runs it needs; the study's notes say why one
is missing. Figures use matplotlib's object API through :mod:`dbench.reporting.plots`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from dbench.reporting.figures import fixed_jitter
from dbench.reporting.labels import dataset_name, param_label, score_label
from dbench.reporting.plots import new_figure, seaborn
from dbench.reporting.study_text import short_name

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure


def _grid(count: int, columns: int = 3) -> tuple[int, int]:
    cols = min(columns, count)
    return math.ceil(count / cols), cols


def correlation_figure(study: Any) -> Figure:
    corr = study.tables["correlation"]
    names = [short_name(s) for s in study.scores]
    matrix = corr.pivot(index="a", columns="b", values="rho").loc[study.scores, study.scores]
    matrix.index, matrix.columns = names, names
    # room for the longest metric name on both axes (the x labels are slanted)
    size = 1.0 + 0.6 * len(names) + 0.07 * max(len(n) for n in names)
    fig = new_figure(size + 1.5, size)
    ax = fig.add_subplot()
    seaborn().heatmap(matrix, ax=ax, vmin=-1, vmax=1, cmap="RdBu_r", annot=len(names) <= 14,
                      fmt=".2f", square=True, cbar_kws={"label": "Spearman ρ"})  # fmt: skip
    ax.tick_params(axis="x", labelrotation=40)
    ax.tick_params(axis="y", labelrotation=0)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_title(f"{dataset_name(study.dataset)}: rank correlation between metrics")
    return fig


def per_method_figure(study: Any) -> Figure:
    sns, f = seaborn(), study.frame
    order = sorted(f["method"].unique())
    rows, cols = _grid(len(study.scores))
    fig = new_figure(4.2 * cols, 0.9 + 2.8 * rows)
    for i, score in enumerate(study.scores):
        ax = fig.add_subplot(rows, cols, i + 1)
        data = f.dropna(subset=[score])
        sns.violinplot(data=data, x="method", y=score, order=order, ax=ax, inner=None,
                       cut=0, color="0.85", linewidth=0.8)  # fmt: skip
        with fixed_jitter():
            sns.stripplot(data=data, x="method", y=score, order=order, ax=ax, size=2.5,
                          hue="method", hue_order=order, legend=False, jitter=0.2)  # fmt: skip
        ax.set_xlabel("")
        ax.set_ylabel(score_label(score))
        ax.tick_params(axis="x", labelrotation=40, labelsize=7)
    fig.suptitle(f"{dataset_name(study.dataset)}: headline scores per method (each dot a run)")
    return fig


def swept(frame: pd.DataFrame) -> list[str]:
    """Methods whose strength takes two values or more."""
    counts = frame.dropna(subset=["value"]).groupby("method")["value"].nunique()
    return sorted(counts[counts >= 2].index)


def strength_figure(study: Any, score: str) -> Figure:
    f = study.frame.dropna(subset=["value", score])
    methods = [m for m in swept(study.frame) if m in set(f["method"])]
    rows, cols = _grid(len(methods), 6)
    fig = new_figure(2.6 * cols, 0.8 + 2.4 * rows)
    first = None
    for i, method in enumerate(methods):
        ax = fig.add_subplot(rows, cols, i + 1, sharey=first)
        first = first or ax
        part = f[f["method"] == method]
        ax.scatter(part["value"], part[score], s=9, alpha=0.6, color="C0")
        means = part.groupby("value")[score].mean()
        ax.plot(means.index, means.to_numpy(), color="C3", marker="o", markersize=3)
        if (part["value"] > 0).all() and part["value"].max() / part["value"].min() >= 20:
            ax.set_xscale("log")
        values = sorted(part["value"].unique())
        if len(values) <= 12:  # ticks at the values swept (a log axis's powers of ten would
            ax.set_xticks(values, [f"{v:g}" for v in values])  # be mathtext, drawn as text)
            ax.minorticks_off()
        ax.set_title(method, fontsize=9)
        ax.set_xlabel(param_label(str(part["strength"].iloc[0])))
        ax.set_ylabel(score_label(score) if i % cols == 0 else "")
    fig.suptitle(f"{dataset_name(study.dataset)}: {score_label(score)} against the "
                 "regularisation strength (dots: seeds; line: mean)")  # fmt: skip
    return fig


def representation_figure(study: Any) -> Figure:
    table = study.tables["representation_tc"]
    methods = sorted(table["method"].unique())
    rows, cols = _grid(len(methods), 6)
    fig = new_figure(2.6 * cols, 0.8 + 2.4 * rows)
    for i, method in enumerate(methods):
        ax = fig.add_subplot(rows, cols, i + 1)
        part = table[table["method"] == method]
        for column, label, colour in (("tc_mean", "mean", "C0"), ("tc_sampled", "sampled", "C1")):
            ax.scatter(part["value"], part[column], s=9, alpha=0.5, color=colour)
            means = part.groupby("value")[column].mean()
            ax.plot(means.index, means.to_numpy(), color=colour, marker="o", markersize=3,
                    label=label)  # fmt: skip
        ax.set_title(method, fontsize=9)
        ax.set_xlabel(param_label(str(part["strength"].iloc[0])))
        ax.set_ylabel("Gaussian total correlation" if i % cols == 0 else "")
        ax.legend(fontsize=7)
    fig.suptitle(f"{dataset_name(study.dataset)}: total correlation of the mean and the "
                 "sampled representation")  # fmt: skip
    return fig


def study_figures(study: Any) -> dict[str, Figure]:
    """The figures a study's runs support, by file name (without ``.png``)."""
    figures = {}
    if "correlation" in study.tables:
        figures["correlation"] = correlation_figure(study)
    if study.scores and study.frame["method"].nunique() >= 2:
        figures["per_method"] = per_method_figure(study)
    if swept(study.frame):
        for score in study.scores:
            if study.frame.dropna(subset=["value", score]).empty:
                continue
            name = short_name(score).replace("#", "_")
            figures[f"strength_{name}"] = strength_figure(study, score)
    if "representation_tc" in study.tables:
        figures["representation_tc"] = representation_figure(study)
    return figures
