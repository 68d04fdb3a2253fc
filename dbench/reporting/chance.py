"""Chance levels of scores, drawn as a line on figures where a metric has one.

The Higgins et al. (2017) and FactorVAE (Kim & Mnih 2018) scores are accuracies of a
classifier that names which factor was held fixed, chosen uniformly among the factors used:
chance is 1/K for K factors (Higgins et al. leave some out with ``exclude_factors``;
``higgins_noshape`` leaves out shape). The factors come from the record's dataset block.
Other metrics declare no chance level (MIG, DCI and SAP are 0 for an uninformative code, which
the axis already shows).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: classifier metrics: the factors each always leaves out of the choice
CLASSIFIER_METRICS: dict[str, tuple[str, ...]] = {
    "higgins": (),
    "higgins_noshape": ("shape",),
    "factorvae": (),
}
CLASSIFIER_SCORES = frozenset({"eval_accuracy", "train_accuracy"})


def chance_level(column: str, factor_names: list[str], settings: dict[str, Any]) -> float | None:
    """1/K for a classifier score over K factors; None when the score has no chance level."""
    metric, _, score = column.partition(".")
    if metric not in CLASSIFIER_METRICS or score not in CLASSIFIER_SCORES or not factor_names:
        return None
    excluded = set(CLASSIFIER_METRICS[metric]) | set(settings.get("exclude_factors") or ())
    used = [f for f in factor_names if f not in excluded]
    return 1.0 / len(used) if used else None


def runs_chance(runs: pd.DataFrame, column: str) -> float | None:
    """The chance level of ``column`` over a runs frame (one dataset), or None when the runs
    disagree (different factor sets or settings) or the metric has none."""
    if "_factors" not in runs or "_protocol" not in runs:
        return None
    metric = column.partition(".")[0]
    levels = set()
    for factors, proto in zip(runs["_factors"], runs["_protocol"], strict=True):
        settings = json.loads(proto).get(metric, {}).get("settings", {})
        levels.add(chance_level(column, json.loads(factors), settings))
    return levels.pop() if len(levels) == 1 else None
