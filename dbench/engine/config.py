"""RunConfig: everything that defines a run (settings reach it via dbench.engine.settings)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from dbench.checks import NONNEGATIVE_INT, POSITIVE_INT, check_seed
from dbench.contracts import Budget
from dbench.errors import UserError

#: the environment variable that sets the default ``--precision`` (a machine's or a CI's choice)
PRECISION_ENV = "DBENCH_PRECISION"
#: scopes of ``--set`` that are not metric names (model and dataset arguments have fields)
_NOT_METRICS = ("model", "dataset", "budget")
#: the constraint of each budget field (None: unset, the model's default budget decides)
_BUDGET = {"steps": NONNEGATIVE_INT, "batch_size": POSITIVE_INT, "checkpoint_every": POSITIVE_INT}


@dataclass(init=False)
class RunConfig:
    """One run: a model (with kwargs) trained and scored on one dataset with one seed.

    ``metrics=None`` means every registered metric marked cheap. ``settings`` are metric
    settings spelled as ``dbench.evaluate`` and ``--set`` take them, flat ``METRIC.key``:
    ``{"higgins.num_train": 1000}``; the config holds them by metric in ``metric_kwargs`` (the
    engine's form, and what a run record's ``config.metric_kwargs`` keeps). ``data_dir`` /
    ``results_dir`` default to ``$DBENCH_DATA`` / ``$DBENCH_RESULTS`` or ``./datasets`` /
    ``./results``. Progress is not part of a run: ``run_one(config, progress=False)``.
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
    # auto | fp32 | bf16 (dbench.models.precision); $DBENCH_PRECISION sets the default
    precision: str = "auto"
    data_dir: str | None = None
    results_dir: str | None = None
    resume: bool = False
    overwrite: bool = False

    def __init__(
        self,
        model: str,
        dataset: str = "dsprites",
        model_kwargs: Mapping[str, Any] | None = None,
        dataset_kwargs: Mapping[str, Any] | None = None,
        metrics: list[str] | None = None,
        settings: Mapping[str, Any] | None = None,
        seed: int = 0,
        budget: Budget | Mapping[str, Any] | None = None,
        device: str = "auto",
        precision: str | None = None,
        data_dir: str | None = None,
        results_dir: str | None = None,
        resume: bool = False,
        overwrite: bool = False,
        *,
        metric_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        show_progress: bool | None = None,
    ):
        self.model, self.dataset, self.metrics, self.seed = model, dataset, metrics, seed
        self.model_kwargs = dict(model_kwargs or {})
        self.dataset_kwargs = dict(dataset_kwargs or {})
        self.budget = Budget(**budget) if isinstance(budget, Mapping) else budget or Budget()
        self.device = device
        self.precision = precision or os.environ.get(PRECISION_ENV) or "auto"
        self.data_dir, self.results_dir = data_dir, results_dir
        self.resume, self.overwrite = resume, overwrite
        self.metric_kwargs = {}
        if metric_kwargs is not None:  # the spelling of 0.3 and before, kept for one release
            _deprecated(
                "metric_kwargs={'METRIC': {'key': value}}", "settings={'METRIC.key': value}"
            )
            self.metric_kwargs = {name: dict(values) for name, values in metric_kwargs.items()}
        for name, values in by_metric(settings or {}).items():
            self.metric_kwargs[name] = {**self.metric_kwargs.get(name, {}), **values}
        #: only the deprecated keyword sets this; run_one reads it when not given progress=
        self._show_progress = show_progress
        if show_progress is not None:
            _deprecated("show_progress=", "run_one(config, progress=...)")
        self.__post_init__()

    def __post_init__(self) -> None:
        """Check the values (also called by :func:`dbench.engine.settings.apply`)."""
        from dbench.models.precision import check_choice

        check_choice(self.precision)
        check_seed(self.seed)
        for name, rule in _BUDGET.items():
            value = getattr(self.budget, name)
            if value is not None:
                rule.check(f"budget {name}", value)

    @property
    def settings(self) -> dict[str, Any]:
        """The metric settings, flat (``{"higgins.num_train": 1000}``)."""
        return {
            f"{m}.{k}": v for m, values in self.metric_kwargs.items() for k, v in values.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """The fields as keywords that rebuild this config: ``RunConfig(**config.to_dict())``."""
        fields = asdict(self)
        del fields["metric_kwargs"]
        return {**fields, "settings": self.settings}


def by_metric(settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Flat ``METRIC.key`` settings held by metric: ``{"mig.fast": True}`` -> ``{"mig": {...}}``.
    Unknown metric names are refused later, with a suggestion, by the settings check."""
    if not isinstance(settings, Mapping):
        shown = type(settings).__name__
        raise UserError(f"settings must be a dict of METRIC.key: value; got {shown}")
    out: dict[str, dict[str, Any]] = {}
    for key, value in settings.items():
        metric, dot, name = str(key).partition(".")
        if not (metric and dot and name) or metric in _NOT_METRICS:
            raise UserError(
                f"RunConfig setting {key!r}: settings are METRIC.key (e.g. higgins.num_train); "
                "model and dataset arguments go in model_kwargs and dataset_kwargs"
            )
        out.setdefault(metric, {})[name] = value
    return out


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"RunConfig({old}) is deprecated and will be removed in the next release; use {new}",
        DeprecationWarning,
        stacklevel=3,
    )
