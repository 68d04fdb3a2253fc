"""The Markdown summary of a study (:mod:`dbench.reporting.study`): what ``dbench study``
prints, quotable verbatim in the README: per dataset the rank-correlation matrix of the
headline scores, the variance shares (method / hyperparameter / seed), the mean regret of
unsupervised model selection, and one line for each analysis the runs could not support."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from dbench.reporting.labels import dataset_name, score_label


def short_name(column: str) -> str:
    """A headline score column by its metric: ``mig.mig`` -> ``mig``; others as they are."""
    metric, _, score = column.partition(".")
    return metric if score else column


def _number(value: float, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _share(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.0f}%"


class Block(NamedTuple):
    """One table of the summary, in words: the same rows feed the Markdown that ``dbench
    study`` prints and the HTML of ``dbench report``'s study section."""

    caption: str
    header: list[str]
    rows: list[list[str]]
    numeric_from: int = 1  # columns from here on are numbers (right-aligned)


def _lines(block: Block) -> list[str]:
    align = ["---" if i < block.numeric_from else "---:" for i in range(len(block.header))]
    lines = ["| " + " | ".join(block.header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in block.rows]
    return [block.caption, "", *lines]


def _range(values: list[int]) -> str:
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def heading(study: Any) -> str:
    f = study.frame
    seeds = f.groupby(["method", "config"]).size()
    return (
        f"### {dataset_name(study.dataset)} ({study.data}): {len(f):,} runs, "
        f"{f['method'].nunique()} methods, {len(seeds)} configurations, "
        f"{_range(list(seeds))} seed{'' if seeds.max() == 1 else 's'} each"
    )


def correlation_block(study: Any) -> Block | None:
    corr = study.tables.get("correlation")
    if corr is None:
        return None
    scores = study.scores
    rho = {(a, b): r for a, b, r in zip(corr["a"], corr["b"], corr["rho"], strict=True)}
    n = [int(k) for a, b, k in zip(corr["a"], corr["b"], corr["n"], strict=True) if a != b]
    rows = [[short_name(a)] + [_number(rho[(a, b)]) for b in scores] for a in scores]
    return Block(
        f"Spearman rank correlation between the headline scores, over runs (n = {_range(n)} "
        "runs having both):",
        ["", *[short_name(s) for s in scores]],
        rows,
    )


def variance_block(study: Any) -> Block | None:
    var = study.tables.get("variance")
    if var is None:
        return None
    rows = [
        [
            score_label(r.score),
            _share(r.method),
            _share(r.hyperparameter),
            _share(r.seed),
            f"{r.n_runs:,}",
        ]  # fmt: skip
        for r in var.itertuples()
    ]
    return Block(
        "Share of each headline score's variance (nested sums of squares: between methods, "
        "between hyperparameter values within a method, between seeds of a configuration):",
        ["score", "method", "hyperparameter", "seed", "runs"],
        rows,
    )


def selection_block(study: Any) -> Block | None:
    table = study.tables.get("selection")
    if table is None:
        return None
    grouped = table.groupby(["selector", "target"], sort=True)
    rows = [
        [
            short_name(sel),
            score_label(target),
            str(len(part)),
            _number(part["regret"].mean(), 3),
            _number(part["random_regret"].mean(), 3),
        ]  # fmt: skip
        for (sel, target), part in grouped
    ]
    return Block(
        "Unsupervised model selection: per method, the hyperparameter value the selector ranks "
        "best; regret against the best value (mean over methods; 0 is the oracle):",
        ["selector", "metric", "methods", "regret", "random pick regret"],
        rows,
        2,
    )


def blocks(study: Any) -> list[Block]:
    """The summary's tables that the study's runs support, in order."""
    made = (correlation_block(study), variance_block(study), selection_block(study))
    return [block for block in made if block is not None]


def summary_markdown(studies: list[Any]) -> str:
    """Every study's summary, one after the other."""
    parts = []
    for study in studies:
        lines = [heading(study), ""]
        for block in blocks(study):
            lines += [*_lines(block), ""]
        lines += [f"- {note}" for note in study.notes]
        parts.append("\n".join(lines).rstrip() + "\n")
    return "\n".join(parts)
