"""Short human labels for configurations and budgets, shared by tables, plots and comparisons."""

from __future__ import annotations

import json
from typing import Any


def config_label(model: str, kwargs: dict[str, Any]) -> str:
    """Short human name of a configuration: ``betavae beta=4``."""
    if not kwargs:
        return model
    shown = " ".join(f"{k}={_short(v)}" for k, v in sorted(kwargs.items()))
    return f"{model} {shown}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def budget_text(budget_json: str) -> str:
    try:
        budget = json.loads(budget_json)
    except (TypeError, ValueError):
        return str(budget_json)
    if not budget:
        return "unknown"  # a record from before budgets were recorded
    if all(v is None for v in budget.values()):
        return "default"  # models that do not train (oracle, raw) or use their own default
    names = {"batch_size": "batch"}
    return " ".join(
        f"{names.get(k, k)}={'default' if v is None else v}" for k, v in sorted(budget.items())
    )
