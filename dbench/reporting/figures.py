"""Summary figures over runs (seaborn), one set per dataset, the figures a paper would use:

- a score against a swept hyperparameter (beta when it varies, else whichever numeric
  hyperparameter a model family sweeps), mean ± std over seeds with every seed as a dot
  (the beta sweeps of Higgins et al. 2017, Fig. 7 style);
- the distribution of a score over seeds per configuration (Locatello et al. 2019, Fig. 6/7:
  every run shown, never one number);
- reconstruction loss against the score, one point per run coloured by model (the trade-off
  beta controls), on a log axis when the losses span more than :data:`LOG_RATIO` times (an
  untrained VAE's thousands of nats beside trained ones' tens);
- in a budget study (a model trained for several numbers of steps), the score against the
  training steps, one line per model, mean ± std over seeds.

Axes carry readable labels ("Higgins score (eval accuracy)"), titles name the dataset and say
what is drawn (``one run per point`` when there are no seeds to average), and a dashed line
marks the chance level where the metric has one (:mod:`dbench.reporting.chance`). The seed
distributions and the steps figure take their score axis from the data, never from chance
(the chance line is drawn when it falls inside, and the axis label says where it is); seed
distributions label each row with what sets it apart (the leaderboard's label, plus the budget
settings that differ) and list rows in the table's rank order. A figure that would show a
single point is skipped with a note saying why.

They take the runs frame of :func:`dbench.reporting.aggregate.filtered_runs`.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from dbench.reporting.aggregate import GROUP_KEYS, config_labels, param_columns
from dbench.reporting.chance import runs_chance
from dbench.reporting.identity import protocol_text
from dbench.reporting.labels import param_label, score_label
from dbench.reporting.plots import new_figure, seaborn

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure


#: the reconstruction axis turns logarithmic when its largest loss is this many times the least
LOG_RATIO = 10


@contextlib.contextmanager
def fixed_jitter(seed: int = 0) -> Iterator[None]:
    """seaborn's ``stripplot`` jitters dots with numpy's global generator: seeded here (and
    restored after), so that a figure drawn twice from the same records is the same file."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _configs(runs: pd.DataFrame, keep_apart: bool = True) -> pd.Series:
    """A label per run naming its configuration: the leaderboard's label (the model and the
    hyperparameters that set it apart), the budget settings that differ among the runs that
    train (``[steps=5000]``), the metric settings when they differ, and (``keep_apart``), for
    configurations still alike in all of these, the id of their first run."""
    frame = runs.assign(_table="one")
    labels = frame.assign(_label=config_labels(frame, compact=True))["_label"]
    budgets = runs["_budget"].map(json.loads)
    trained = [b for b in budgets if any(v is not None for v in b.values())]
    keys = sorted({k for b in trained for k in b})
    differ = [k for k in keys if len({json.dumps(b.get(k)) for b in trained}) > 1]
    names = {"batch_size": "batch"}

    def budget(b: dict[str, Any]) -> str:
        shown = [f"{names.get(k, k)}={b.get(k)}" for k in differ if b.get(k) is not None]
        return f" [{' '.join(shown)}]" if shown else ""

    labels = labels + budgets.map(budget)
    if runs["_protocol"].nunique() > 1:  # same label, other metric settings: say which
        labels = labels + " (" + runs["_protocol"].map(protocol_text) + ")"
    if not keep_apart:
        return labels
    key = runs[GROUP_KEYS].astype(str).agg("\x1f".join, axis=1)
    clash = key.groupby(labels).transform("nunique") > 1
    first = runs.groupby(key)["run_id"].transform("min")
    return labels.where(~clash, labels + " (" + first + ")")


def _limits(values: pd.Series, chance: float | None) -> tuple[float, float, bool]:
    """Axis limits from the data with a margin, and whether ``chance`` lies inside them."""
    low, high = float(values.min()), float(values.max())
    pad = 0.08 * (high - low) if high > low else max(0.05 * abs(high), 0.01)
    low, high = low - pad, high + pad
    return low, high, chance is not None and low <= chance <= high


def _chance_words(chance: float | None, inside: bool, low: float) -> str:
    """Where the chance level is, for an axis label (a second line)."""
    if chance is None:
        return ""
    where = "dashed" if inside else ("below" if chance < low else "above") + " this axis"
    return f"\nchance {chance:.2g}: {where}"


def _log_axis(axis: Any) -> None:
    """A log scale with plain tick labels (1, 2, 5 x powers of ten; no mathtext, which figures
    are saved without)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _drawn(counts: pd.Series) -> str:
    """What a line plot's points are, from the runs behind each point."""
    if counts.max() <= 1:
        return "one run per point (no seeds to average)"
    if counts.min() <= 1:
        return "mean ± std over seeds (some points are one run); dots are runs"
    return "mean ± std over seeds; dots are runs"


def _chance_line(ax: Any, chance: float | None) -> None:
    if chance is not None:
        ax.axhline(
            chance, color="0.45", linestyle="--", linewidth=1, label=f"chance ({chance:.2g})"
        )


def _numeric(column: pd.Series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def swept_parameter(runs: pd.DataFrame, score: str) -> str | None:
    """The numeric hyperparameter some model family sweeps (two or more values with all else
    equal), beta first; None when no family has more than one value of any."""
    data = runs.dropna(subset=[score])
    best, best_key = None, (0, 0)
    for col in param_columns(data):
        if not _numeric(data[col]) or data[col].nunique() < 2:
            continue
        name = _param_name(data, col)
        others = data["_params"].map(lambda p, n=name: json.dumps(_without(p, n)))
        family = data["model"] + "\x1f" + others + "\x1f" + data["_budget"]
        counts = data.groupby(family)[col].nunique()
        key = (int((counts > 1).sum()), int(counts.max()))
        if key[0] and (col == "beta" or (best != "beta" and key > best_key)):
            best, best_key = col, key
    return best


def _param_name(runs: pd.DataFrame, column: str) -> str:
    """The hyperparameter's own name (its column may be ``param_<name>``)."""
    for text in runs["_params"]:
        names = json.loads(text)
        if column in names or column.removeprefix("param_") in names:
            return column if column in names else column.removeprefix("param_")
    return column


def _without(params_json: str, name: str) -> dict[str, Any]:
    return {k: v for k, v in json.loads(params_json).items() if k != name}


def score_vs_param(
    runs: pd.DataFrame, score: str, param: str, title: str, chance: float | None = None
) -> Figure | None:
    """Mean ± std over seeds of ``score`` against ``param``, one line per model family (the
    model, its other hyperparameters and budget), seeds as dots (when any point has several);
    the subtitle says which is drawn. None when no family has two values of ``param``."""
    name = _param_name(runs, param)
    data = runs.dropna(subset=[param, score]).copy()
    stripped = data.assign(_params=data["_params"].map(lambda p: json.dumps(_without(p, name))))
    data["family"] = _configs(stripped, keep_apart=False).to_numpy()
    spread = data.groupby("family")[param].nunique()
    data = data[data["family"].isin(spread[spread > 1].index)]
    if data.empty:
        return None
    data[param] = data[param].astype("float64")
    sns = seaborn()
    fig = new_figure(6.5, 4.2)
    ax = fig.subplots()
    sns.lineplot(
        data=data, x=param, y=score, hue="family", errorbar="sd", marker="o",
        err_style="bars", ax=ax,
    )  # fmt: skip
    drawn = _drawn(data.groupby(["family", param]).size())
    if "dots" in drawn:
        ax.scatter(data[param], data[score], s=12, color="0.25", alpha=0.45, zorder=3,
                   label="seeds")  # fmt: skip
    _chance_line(ax, chance)
    if (data[param] > 0).all() and data[param].max() / data[param].min() >= 10:
        ax.set_xscale("log")
    values = sorted(data[param].unique())
    if len(values) <= 12:  # the values swept, not a log scale's powers of ten
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.minorticks_off()
    ax.set_xlabel(param_label(name))
    ax.set_ylabel(score_label(score))
    ax.legend(title=None, fontsize=8)
    ax.set_title(f"{title}: {score_label(score)} vs {param_label(name)}\n{drawn}", fontsize=10)
    return fig


def score_vs_steps(
    runs: pd.DataFrame, score: str, title: str, chance: float | None = None
) -> Figure | None:
    """A budget study: ``score`` against the training steps, one line per model (its label
    without the budget), mean ± std over seeds with every seed as a dot, the score axis from
    the data; None when no model was trained for two numbers of steps."""
    import pandas as pd

    data = runs.dropna(subset=["steps", score]).copy()
    if data.empty:
        return None
    frame = data.assign(_table="one")
    data["line"] = config_labels(frame, compact=True)
    data["steps"] = data["steps"].astype("float64")
    if data["batch_size"].nunique() > 1:
        data["line"] = data["line"] + " batch=" + data["batch_size"].astype(str)
    spread = data.groupby("line")["steps"].nunique()
    data = data[data["line"].isin(spread[spread > 1].index)]
    if data.empty:
        return None
    sns = seaborn()
    fig = new_figure(6.5, 4.2)
    ax = fig.subplots()
    sns.lineplot(data=data, x="steps", y=score, hue="line", errorbar="sd", marker="o",
                 err_style="bars", ax=ax)  # fmt: skip
    drawn = _drawn(data.groupby(["line", "steps"]).size())
    if "dots" in drawn:
        ax.scatter(data["steps"], data[score], s=12, color="0.25", alpha=0.45, zorder=3,
                   label="seeds")  # fmt: skip
    stats = data.groupby(["line", "steps"])[score].agg(["mean", "std"]).fillna(0.0)
    spans = pd.concat([data[score], stats["mean"] + stats["std"], stats["mean"] - stats["std"]])
    low, high, inside = _limits(spans, chance)
    ax.set_ylim(low, high)
    if inside:
        _chance_line(ax, chance)
    values = sorted(data["steps"].unique())
    if values[0] > 0 and values[-1] / values[0] >= 10:
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
    if len(values) <= 12:
        ax.set_xticks(values, [f"{v:,.0f}" for v in values])
        ax.minorticks_off()
    ax.set_xlabel("training steps")
    ax.set_ylabel(score_label(score) + _chance_words(chance, inside, low))
    ax.legend(title=None, fontsize=8)
    ax.set_title(f"{title}: {score_label(score)} vs training steps\n{drawn}", fontsize=10)
    return fig


def seed_distribution(
    runs: pd.DataFrame,
    score: str,
    lower_is_better: bool = False,
    title: str = "",
    chance: float | None = None,
) -> Figure:
    """Box plot plus every run as a dot, one row per configuration (Locatello et al. 2019).

    Rows are labelled by what sets them apart (:func:`_configs`) and ranked as the leaderboard
    ranks them: by the mean over seeds, best first, ties by model, steps and label. The score
    axis spans the data with a margin; the chance level is drawn when it falls inside it and
    named in the axis label either way."""
    data = runs.dropna(subset=[score]).copy()
    data["config"] = _configs(data).to_numpy()
    ranked = data.groupby("config").agg(
        mean=(score, "mean"), model=("model", "first"), steps=("steps", "first")
    )
    ranked["mean"] = ranked["mean"] if lower_is_better else -ranked["mean"]
    ranked["steps"] = ranked["steps"].astype("float64")
    ranked = ranked.reset_index().sort_values(["mean", "model", "steps", "config"],
                                              na_position="last", kind="stable")  # fmt: skip
    order = list(ranked["config"])
    sns = seaborn()
    longest = max((len(c) for c in order), default=10)
    fig = new_figure(4.5 + 0.075 * longest, 1.4 + 0.45 * max(len(order), 1))
    ax = fig.subplots()
    with warnings.catch_warnings():
        # seaborn 0.13 hands matplotlib 3.11 a deprecated ``vert``: not the user's business
        warnings.filterwarnings("ignore", message=".*vert: bool was deprecated")
        sns.boxplot(
            data=data, x=score, y="config", order=order, color="0.9", showfliers=False, ax=ax
        )
    with fixed_jitter():
        sns.stripplot(data=data, x=score, y="config", order=order, hue="model", size=5,
                      jitter=0.15, legend=False, ax=ax)  # fmt: skip
    low, high, inside = _limits(data[score], chance)
    ax.set_xlim(low, high)
    if inside:
        ax.axvline(chance, color="0.45", linestyle="--", linewidth=1)
    ax.set_ylabel("")
    ax.set_xlabel(score_label(score) + _chance_words(chance, inside, low))
    counts = data.groupby("config").size()
    ax.set_yticks(range(len(order)), [f"{c} (n={counts[c]})" for c in order])
    ax.set_title(f"{title}: {score_label(score)} over seeds\nbox = quartiles, dots = runs",
                 fontsize=10)  # fmt: skip
    return fig


def tradeoff(
    runs: pd.DataFrame, score: str, title: str = "", chance: float | None = None
) -> Figure | None:
    """Reconstruction loss vs ``score``, one point per run coloured by model, the loss on a
    log axis when it spans more than :data:`LOG_RATIO` times; None if fewer than two runs
    recorded the loss."""
    data = runs.dropna(subset=["recon_loss", score])
    if len(data) < 2:
        return None
    sns = seaborn()
    fig = new_figure(6.2, 4.2)
    ax = fig.subplots()
    size = "beta" if "beta" in data and data["beta"].notna().sum() > 1 else None
    sns.scatterplot(data=data, x="recon_loss", y=score, hue="model", size=size, ax=ax)
    _chance_line(ax, chance)
    losses = data["recon_loss"].astype("float64")
    log = bool((losses > 0).all() and losses.max() / losses.min() > LOG_RATIO)
    if log:
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
    scale = ", log scale" if log else ""
    ax.set_xlabel(f"reconstruction loss (nats per image{scale}, lower is better)")
    ax.set_ylabel(score_label(score))
    ax.legend(fontsize=8)
    ax.set_title(f"{title}: reconstruction vs {score_label(score)}\none point per run",
                 fontsize=10)  # fmt: skip
    return fig


def dataset_groups(runs: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """``(name prefix, title, runs)`` per dataset (and data variant): one figure set each."""
    groups = list(runs.groupby(["dataset", "_data"], sort=True))
    variants = runs.groupby("dataset")["_data"].nunique()
    out = []
    for (dataset, _), data in groups:
        title = dataset
        if variants[dataset] > 1:
            title = f"{dataset} ({data['_data_text'].iloc[0]})"
        prefix = "" if len(groups) == 1 else f"{_slug(title)}-"
        out.append((prefix, title, data))
    return out


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def summary_figures(
    runs: pd.DataFrame, score: str, lower_is_better: bool = False
) -> tuple[dict[str, Figure], list[str]]:
    """Every summary figure for ``score``, per dataset; plus why any figure was left out."""
    figures, skipped = {}, []
    if runs.empty or score not in runs:
        return figures, [f"no run has {score}"]
    for prefix, title, data in dataset_groups(runs):
        data = data.dropna(subset=[score])
        if data.empty:
            skipped.append(f"{title}: no run has {score_label(score)}")
            continue
        chance = runs_chance(data, score)
        if len(data) > 1:
            figures[f"{prefix}seeds"] = seed_distribution(
                data, score, lower_is_better, title, chance
            )
        else:
            skipped.append(f"{title}: seed distribution skipped (one run, one point)")
        param = swept_parameter(data, score)
        made = None if param is None else score_vs_param(data, score, param, title, chance)
        if made is None:
            skipped.append(
                f"{title}: score vs hyperparameter skipped (no model was run with two values "
                "of one hyperparameter: each line would be one point)"
            )
        else:
            figures[f"{prefix}{'beta' if param == 'beta' else 'sweep'}"] = made
        made = score_vs_steps(data, score, title, chance)
        if made is not None:  # a budget study; nothing to say when there is none
            figures[f"{prefix}steps"] = made
        made = tradeoff(data, score, title, chance)
        if made is None:
            have = int(data["recon_loss"].notna().sum())
            skipped.append(
                f"{title}: trade-off skipped ({have} run(s) recorded a reconstruction loss; "
                "it needs two)"
            )
        else:
            figures[f"{prefix}tradeoff"] = made
    return figures, skipped
