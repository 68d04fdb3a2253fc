"""Human labels for configurations, budgets, datasets, metrics and hyperparameters, shared by
tables, figures and the published comparison."""

from __future__ import annotations

import json
from typing import Any

#: how papers name the built-in metrics (a plugin metric is shown by its registry name)
METRIC_NAMES = {
    "higgins": "Higgins score",
    "higgins_noshape": "Higgins score without shape",
    "factorvae": "FactorVAE score",
    "mig": "MIG",
    "mig_sup": "MIG-sup",
    "jemmig": "JEMMIG",
    "dcimig": "DCIMIG",
    "dci": "DCI",
    "dci_es": "DCI-ES",
    "sap": "SAP",
    "irs": "IRS",
    "modularity": "Modularity",
    "infomec": "InfoMEC",
    "unsupervised": "Unsupervised",
}
DATASET_NAMES = {
    "dsprites": "dSprites",
    "dsprites_color": "colour dSprites",
    "dsprites_noisy": "noisy dSprites",
    "shapes3d": "3dshapes",
    "faces3d": "3D faces",
}
PARAM_SYMBOLS = {
    "beta": "β",
    "gamma": "γ",
    "c_max": "C max",
    "lambda_od": "λ_od",
    "lambda_d": "λ_d",
}


def short(value: Any) -> str:
    """A hyperparameter value as written on a label: ``4`` for 4.0, ``1e-05``, ``[1, 2]``."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={short(v)}" for k, v in sorted(params.items()))


def config_label(model: str, kwargs: dict[str, Any]) -> str:
    """Short human name of a configuration: ``betavae beta=4``."""
    return f"{model} {params_text(kwargs)}" if kwargs else model


def dataset_name(name: str) -> str:
    return DATASET_NAMES.get(name, name)


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def score_label(column: str) -> str:
    """``higgins.eval_accuracy`` -> ``Higgins score (eval accuracy)``; ``mig.mig`` -> ``MIG``."""
    metric, _, score = column.partition(".")
    name = metric_name(metric)
    if not score or score == metric:
        return name
    return f"{name} ({score.replace('_', ' ')})"


def param_label(name: str) -> str:
    return PARAM_SYMBOLS.get(name, name.replace("_", " "))


def budget_text(budget: Any) -> str:
    """``steps=300000 batch=64``; ``default`` for models that do not train; ``unknown`` for
    records from before budgets were recorded. Takes the budget or its JSON."""
    if isinstance(budget, str):
        try:
            budget = json.loads(budget)
        except ValueError:
            return budget
    if not isinstance(budget, dict) or not budget:
        return "unknown"  # a record from before budgets were recorded
    if all(v is None for v in budget.values()):
        return "default"  # models that do not train (oracle, raw) or use their own default
    names = {"batch_size": "batch"}
    return " ".join(
        f"{names.get(k, k)}={'default' if v is None else v}" for k, v in sorted(budget.items())
    )


def data_text(identity: dict[str, Any], defaults: dict[str, Any]) -> str:
    """``procedural, grid=8``: the data source and the dataset kwargs that are not defaults."""
    kwargs = identity.get("kwargs") or {}
    changed = {k: v for k, v in kwargs.items() if defaults.get(k, object()) != v}
    parts = [str(identity.get("source") or "unknown")]
    if changed:
        parts.append(", ".join(f"{k}={short(v)}" for k, v in sorted(changed.items())))
    return ", ".join(parts)


def run_title(record: dict[str, Any]) -> str:
    """What one run is, for the titles of its figures: ``dsprites: betavae beta=16 |
    batch=64 steps=50 | seed 0``. The model's hyperparameters that differ from its registered
    defaults (every one it recorded when the model is not registered), the budget it trained
    under (left out for models that do not train) and its seed; an ``evaluate`` record names
    its label and says so."""
    from dbench.reporting.identity import budget_of, model_defaults, model_params

    config = record.get("config") or {}
    model = str(config.get("model", "?"))
    try:
        params, budget = model_params(record), budget_of(record)
    except Exception:  # noqa: BLE001 - a partial record still gets a title
        params, budget = dict(config.get("model_kwargs") or {}), record.get("budget") or {}
    defaults = model_defaults(model) or {}
    changed = {k: v for k, v in params.items() if k not in defaults or defaults[k] != v}
    parts = [config_label(model, changed)]
    if record.get("origin") == "evaluate":
        parts[0] += " (dbench evaluate)"
    spent = budget_text(budget)
    if spent not in ("default", "unknown"):
        parts.append(spent)
    parts.append(f"seed {config.get('seed', '?')}")
    return f"{config.get('dataset', '?')}: " + " | ".join(parts)


def figure_title(
    run: str | None, kind: str, dataset: str = "", fig: Any = None, size: float = 9
) -> str:
    """A figure's title: the run's description, wrapped to fit ``fig``'s width at ``size``
    points, above what the figure shows; ``dataset: kind`` (or ``kind``) when no run is named."""
    import textwrap

    if not run:
        return f"{dataset}: {kind}" if dataset else kind
    inches = fig.get_figwidth() if fig is not None else 8.0
    width = max(24, int(0.85 * inches * 72 / (0.6 * size)))  # characters about 0.6 em wide
    return "\n".join([*textwrap.wrap(run, width, break_on_hyphens=False), kind])
