"""``dbench study``: the analyses of Locatello et al. 2019 ("Challenging Common Assumptions in
the Unsupervised Learning of Disentangled Representations", ICML) over every run of a results
root, one study per dataset (and data variant).

Runs come through the leaderboard's loading (:func:`dbench.reporting.aggregate.load_records`
and :func:`~dbench.reporting.aggregate.filtered_runs`), so a study sees exactly the runs,
configurations and metric protocols a leaderboard sees. On top of them a *method* is the
model plus its string-valued hyperparameters (``dipvae kind=i`` and ``dipvae kind=ii`` are two
methods), and a method's *strength* is the one numeric hyperparameter that varies among its
configurations (beta, C max, gamma, lambda_od: the regularisation strength). Each metric is
represented by its headline score.

Per study, :func:`analyse` gives tidy tables (runs, rank correlations, variance shares, model
selection, downstream correlations, mean vs sampled total correlation) and one line for each
analysis the runs cannot support; :func:`write_study` writes them as CSV and JSON with the
figures of :mod:`dbench.reporting.study_figures`; :mod:`dbench.reporting.study_text` gives the
Markdown summary the command prints (and the README quotes).

A record scored on a sampled representation says so in its ``representation`` block (a value
``"sampled"``); such records feed only the mean-vs-sampled analysis (their Fig. 1).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbench.engine.store import RunRecord
from dbench.errors import UserError
from dbench.reporting.aggregate import filtered_runs, load_records, table_key, warn_skipped
from dbench.reporting.labels import config_label
from dbench.reporting.runs import runs_frame, summary_of
from dbench.reporting.study_stats import (
    MIN_RUNS,
    cross_correlations,
    model_selection,
    rank_correlations,
    variance_shares,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: the swept hyperparameter of the built-in methods, when more than one varies
STRENGTHS = ("beta", "c_max", "gamma", "lambda_od", "lambda_d")
TC = "unsupervised.gaussian_total_correlation"
#: scores that can pick a model without labels, and whether lower is better
UDR = "udr.udr"
SELECTORS = {TC: True, UDR: False, "recon_loss": True}
#: metrics that are not supervised disentanglement scores (never a model-selection target)
NOT_TARGETS = frozenset({"unsupervised", "udr", "downstream"})
DOWNSTREAM = re.compile(r"downstream(#\d+)?\.(logreg|gbt)_accuracy_(100|10000)")


def _sampled(record: RunRecord) -> bool:
    return summary_of(record)["sampled"]


def _dataset(record: RunRecord) -> str:
    return summary_of(record)["row"]["dataset"]


@dataclass
class Study:
    """One dataset's study: its runs (the study frame), headline scores and results."""

    name: str  # folder name: the dataset (``-2``, ``-3`` for further data variants)
    dataset: str
    data: str  # the data source and non-default dataset kwargs, in words
    frame: pd.DataFrame
    lower: dict[str, bool]  # headline score column -> lower is better
    strengths: dict[str, str | None] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def scores(self) -> list[str]:
        return list(self.lower)


def metric_of(column: str) -> str:
    """``dci#2.disentanglement`` -> ``dci``."""
    return column.split(".", 1)[0].split("#", 1)[0]


def headlines(runs: pd.DataFrame, meta: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """``{<metric>.<headline>: lower is better}`` for every metric some run has."""
    out = {}
    for metric in sorted(meta):
        primary = meta[metric]["primary"]
        column = f"{metric}.{primary}"
        if column in runs and runs[column].notna().any():
            out[column] = primary in meta[metric]["lower_is_better"]
    return out


def _numbers(params: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in params.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def params_of(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """Per run its resolved hyperparameters (read-only: the seeds of a configuration share
    one dict, each distinct ``_params`` text parsed once)."""
    parsed = {text: json.loads(text) for text in dict.fromkeys(runs["_params"])}
    return [parsed[text] for text in runs["_params"]]


def methods_of(runs: pd.DataFrame) -> list[str]:
    """Per run its method: the model with the string choices that vary among its runs."""
    params = params_of(runs)
    models = list(runs["model"])
    text = [{k: v for k, v in p.items() if isinstance(v, str)} for p in params]
    varying: dict[str, list[str]] = {}
    for model in set(models):
        own = [t for t, m in zip(text, models, strict=True) if m == model]
        keys = {k for t in own for k in t}
        varying[model] = sorted(k for k in keys if len({t.get(k) for t in own}) > 1)
    return [
        config_label(m, {k: t[k] for k in varying[m] if k in t})
        for m, t in zip(models, text, strict=True)
    ]


def strengths_of(
    methods: list[str], params: list[dict[str, Any]], notes: list[str]
) -> dict[str, str | None]:
    """Per method the numeric hyperparameter that varies among its runs (None: none does)."""
    out: dict[str, str | None] = {}
    for method in sorted(set(methods)):
        numbers = [_numbers(p) for p, m in zip(params, methods, strict=True) if m == method]
        keys = sorted({k for n in numbers for k in n})
        counts = {k: len({n.get(k) for n in numbers}) for k in keys}
        vary = [k for k in keys if counts[k] > 1]
        if not vary:
            out[method] = None
            continue
        known = [k for k in STRENGTHS if k in vary]
        out[method] = known[0] if known else max(vary, key=lambda k: (counts[k], k))
        if len(vary) > 1:
            notes.append(
                f"{method}: several hyperparameters vary ({', '.join(vary)}); "
                f"{out[method]} is taken as its strength"
            )
    return out


def study_frame(runs: pd.DataFrame, lower: dict[str, bool], notes: list[str]) -> pd.DataFrame:
    """One row per run: ids, method, configuration, strength and value, headline scores,
    ``recon_loss``, the downstream accuracies and every other score column kept for them."""
    import pandas as pd

    params = params_of(runs)
    methods = methods_of(runs)
    strength = strengths_of(methods, params, notes)
    names = [strength[m] for m in methods]
    values = [
        math.nan if n is None else _numbers(p).get(n, math.nan)
        for n, p in zip(names, params, strict=True)
    ]
    frame = pd.DataFrame({
        "run_id": runs["run_id"].to_numpy(),
        "seed": runs["seed"].to_numpy(),
        "model": runs["model"].to_numpy(),
        "method": methods,
        "config": runs["_config"].str[:12].to_numpy(),
        "strength": names,
        "value": pd.array(values, dtype="float64"),
    })  # fmt: skip
    extra = [c for c in runs.columns if DOWNSTREAM.fullmatch(c) and c not in lower]
    for column in [*lower, *extra, "recon_loss"]:
        frame[column] = runs[column].to_numpy(dtype="float64")
    frame["_run"] = runs["_run"].to_numpy()
    return frame


def build_studies(records: list[RunRecord], dataset: str | None) -> list[Study]:
    """One :class:`Study` per dataset and data variant among ``records``."""
    runs, meta = filtered_runs(records, dataset, None, None)
    if runs.empty:
        return []
    studies = []
    for name_ds, part in runs.groupby("dataset", sort=True):
        variants = list(part.groupby(table_key(part), sort=True))
        for i, (_, table) in enumerate(variants):
            table = table.reset_index(drop=True)
            lower = headlines(table, meta)
            notes: list[str] = []
            frame = study_frame(table, lower, notes)
            strengths = dict(zip(frame["method"], frame["strength"], strict=True))
            name = str(name_ds) if i == 0 else f"{name_ds}-{i + 1}"
            studies.append(Study(name, str(name_ds), str(table["_data_text"].iloc[0]), frame,
                                 lower, strengths, notes=notes))  # fmt: skip
    return studies


# -- the analyses ----------------------------------------------------------------------------
def analyse(study: Study, sampled: pd.DataFrame | None = None) -> Study:
    """Fill ``study.tables`` and ``study.notes`` (one line per analysis left out)."""
    f, scores, notes = study.frame, study.scores, study.notes
    study.tables["runs"] = f.drop(columns=["_run"])
    methods = sorted(f["method"].unique())
    # 1. rank correlations between the metrics
    if len(scores) < 2:
        notes.append(f"rank correlation: needs two metrics or more (scored: {', '.join(scores)})")
    else:
        corr = rank_correlations(f, scores)
        if corr.loc[corr["a"] != corr["b"], "n"].max() < MIN_RUNS:
            notes.append(f"rank correlation: needs {MIN_RUNS} runs or more scored by two metrics")
        else:
            study.tables["correlation"] = corr
    # 2. distributions (figures only): say what cannot be drawn
    if len(methods) < 2:
        notes.append(f"score per method: needs two methods or more (only {methods[0]})")
    swept = f.dropna(subset=["value"]).groupby("method")["value"].nunique()
    if not (swept >= 2).any():
        notes.append("score against hyperparameter: needs a method with two values of its "
                     "hyperparameter or more")  # fmt: skip
    # 3. variance decomposition
    _variance(study)
    _selection(study)
    _downstream(study)
    _representations(study, sampled)
    return study


def _variance(study: Study) -> None:
    """Over the configurations with two seeds or more only: a configuration with one seed
    has no seed variation to separate, so with it the hyperparameter's share would absorb
    its seed's (and the seed's share shrink). UDR is left out: it is computed across a
    configuration's seeds (each seed's value a median over the others), not per seed."""
    f, notes = study.frame, study.notes
    seeds = f.groupby(["method", "config"])["run_id"].transform("size")
    kept = f[seeds >= 2]
    if kept.empty:
        notes.append("variance decomposition: needs two seeds or more of a configuration "
                     "(every configuration here has one seed)")  # fmt: skip
        return
    scores = [s for s in study.scores if metric_of(s) != "udr"]  # every UDR protocol
    if not scores:
        return
    study.tables["variance"] = variance_shares(kept, scores)
    left = int((seeds == 1).sum())  # one run each: the configurations left out
    if left:
        configs = len(kept[["method", "config"]].drop_duplicates())
        notes.append(f"variance decomposition: over the {len(kept):,} runs of the {configs} "
                     f"configurations with two seeds or more; {left} with one seed left out")
    if kept["method"].nunique() < 2:
        notes.append("variance decomposition: one method only, so its method share is 0")


def _selection(study: Study) -> None:
    f = study.frame
    selectors = {c: low for c, low in SELECTORS.items() if c in f and f[c].notna().any()}
    targets = {c: low for c, low in study.lower.items() if metric_of(c) not in NOT_TARGETS}
    if not selectors:
        study.notes.append("model selection: needs an unsupervised score (unsupervised, udr or "
                           "a reconstruction loss); no run here has one")  # fmt: skip
    elif not targets:
        study.notes.append("model selection: needs a supervised metric; none was scored")
    else:
        table = model_selection(f, selectors, targets)
        if table.empty:
            study.notes.append(
                "model selection: needs a method with two configurations or more scored by "
                "an unsupervised and a supervised metric"
            )
        else:
            study.tables["selection"] = table


def _downstream(study: Study) -> None:
    f = study.frame
    targets = [c for c in f.columns if DOWNSTREAM.fullmatch(c) and f[c].notna().any()]
    if not targets:
        study.notes.append("downstream: no run here was scored with downstream accuracy at 100 "
                           "or 10,000 labels")  # fmt: skip
        return
    rows = [c for c in study.scores if metric_of(c) != "downstream"]
    study.tables["downstream"] = cross_correlations(f, rows, sorted(targets))


def sampled_scores(records: list[RunRecord]) -> pd.DataFrame | None:
    """``_run`` and the total correlation of the records scored on a sampled representation."""
    if not records:
        return None
    runs = runs_frame(records)
    if TC not in runs:
        return runs[["_run"]].assign(tc_sampled=math.nan)
    return runs[["_run", TC]].rename(columns={TC: "tc_sampled"})


def _representations(study: Study, sampled: pd.DataFrame | None) -> None:
    f = study.frame
    if sampled is None:
        study.notes.append("mean vs sampled representation: no record was scored on a sampled "
                           "representation")  # fmt: skip
        return
    if TC not in f:
        study.notes.append("mean vs sampled representation: no run here has the unsupervised "
                           "total correlation of its mean representation")  # fmt: skip
        return
    cols = ["run_id", "method", "strength", "value", "seed", TC, "_run"]
    both = f[cols].merge(sampled.drop_duplicates("_run"), on="_run", how="inner")
    both = both.rename(columns={TC: "tc_mean"}).dropna(subset=["tc_mean", "tc_sampled"])
    if both.empty:
        study.notes.append("mean vs sampled representation: no run here has the total "
                           "correlation of both representations")  # fmt: skip
        return
    study.tables["representation_tc"] = both.drop(columns="_run").reset_index(drop=True)


# -- the command -----------------------------------------------------------------------------
def run_study(results_dir: str | os.PathLike, dataset: str | None = None) -> list[Study]:
    """Every study of a results root (one dataset with ``dataset``), analysed."""
    root = Path(results_dir)
    records, skipped = load_records(root, model_defaults=False)  # no labels: no models loaded
    warn_skipped(skipped)
    return studies_of(records, dataset, root)


def studies_of(records: list[RunRecord], dataset: str | None, root: Path) -> list[Study]:
    """Every study of ``records`` (read from ``root``), analysed: what :func:`run_study` does
    once the records are loaded (the HTML report passes the records it has already read)."""
    sampled = [r for r in records if _sampled(r)]
    means = [r for r in records if not _sampled(r)]
    if dataset is not None and not any(_dataset(r) == dataset for r in means):
        recorded = sorted({_dataset(r) for r in means})
        raise UserError(f"no runs of dataset {dataset!r} under {root / 'runs'} "
                        f"(recorded: {', '.join(recorded) or 'none'})")  # fmt: skip
    studies = build_studies(means, dataset)
    if not studies:
        raise UserError(f"no run records under {root / 'runs'}")
    chosen = [r for r in sampled if dataset is None or _dataset(r) == dataset]
    extra = sampled_scores(chosen)
    return [analyse(s, extra) for s in studies]


def write_study(study: Study, folder: Path, summary: str, figures: bool = True) -> list[Path]:
    """The study's tables (CSV and JSON), ``study.json``, ``summary.md`` and its figures."""
    from dbench.atomic import write_json, write_text

    written = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in study.tables.items():
            write_text(folder / f"{name}.csv", table.to_csv(index=False))
            write_text(folder / f"{name}.json", table.to_json(orient="records", indent=1))
            written += [folder / f"{name}.csv", folder / f"{name}.json"]
        write_text(folder / "summary.md", summary)
    except OSError as exc:
        raise UserError(f"cannot write the study to {folder}: {exc}") from None
    names = []
    if figures:
        from dbench.reporting.plots import save
        from dbench.reporting.study_figures import study_figures

        for name, fig in study_figures(study).items():
            written.append(save(fig, folder / f"{name}.png"))
            names.append(f"{name}.png")
    f = study.frame
    info = {
        "dataset": study.dataset,
        "data": study.data,
        "runs": len(f),
        "methods": sorted(f["method"].unique()),
        "strengths": {k: v for k, v in sorted(study.strengths.items())},
        "scores": study.scores,
        "tables": sorted(study.tables),
        "figures": names,
        "notes": study.notes,
    }
    write_json(folder / "study.json", info)
    return [*written, folder / "summary.md", folder / "study.json"]
