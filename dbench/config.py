"""RunConfig: everything that defines a run, and the ``--set key=value`` parser."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from dbench.api import Budget
from dbench.errors import UserError


@dataclass
class RunConfig:
    """One run: a model (with kwargs) trained and scored on one dataset with one seed.

    ``metrics=None`` means every registered metric marked cheap. ``metric_kwargs`` maps a metric
    name to its settings. ``data_dir``/``results_dir`` default to ``$DBENCH_DATA`` /
    ``$DBENCH_RESULTS`` or ``./datasets`` / ``./results``.
    """

    model: str
    dataset: str = "dsprites"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] | None = None
    metric_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    budget: Budget = field(default_factory=Budget)
    device: str = "auto"
    data_dir: str | None = None
    results_dir: str | None = None
    resume: bool = False
    show_progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.budget, dict):
            self.budget = Budget(**self.budget)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise UserError(f"seed must be a non-negative integer; got {self.seed!r}")
        for name in ("steps", "batch_size"):
            value = getattr(self.budget, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise UserError(f"budget {name} must be a non-negative integer; got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def identity_hash(identity: dict[str, Any]) -> str:
    """Short stable hash of a run's identity (sorted JSON)."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def parse_value(text: str) -> Any:
    """JSON literal when it parses (4, 0.5, true, [1,2], "x"), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_settings(config: RunConfig, settings: list[str], metric_names: list[str]) -> None:
    """Apply ``--set`` items to a config.

    ``key=value`` sets a model kwarg; ``dataset.key=value`` a dataset kwarg;
    ``budget.steps=N`` / ``budget.batch_size=N`` the budget; ``METRIC.key=value`` a setting of
    the metric named METRIC (e.g. ``higgins.num_train=1000``).
    """
    for item in settings:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--set expects key=value; got {item!r}")
        value = parse_value(raw)
        scope, dot, name = key.partition(".")
        if not dot:
            config.model_kwargs[key] = value
        elif scope == "dataset":
            config.dataset_kwargs[name] = value
        elif scope == "budget":
            if name not in ("steps", "batch_size"):
                raise UserError(f"unknown budget field {name!r} (steps, batch_size)")
            config.budget = Budget(**{**config.budget.as_dict(), name: value})
            config.__post_init__()
        elif scope == "model":
            config.model_kwargs[name] = value
        elif scope in metric_names:
            config.metric_kwargs.setdefault(scope, {})[name] = value
        else:
            raise UserError(
                f"--set {key}: unknown scope {scope!r} (model, dataset, budget or a metric name)"
            )
