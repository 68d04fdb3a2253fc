"""The one path for ``key=value`` settings: typed parsing, scopes, one merge, one check.

Settings come from three layers: each component's defaults, a preset (TOML, already typed)
and the command line (``--set``/``--grid`` text, parsed here). :func:`merge` combines flat
``{key: value}`` layers, later layers winning (command line > preset > defaults), and
:func:`route` sends each key to its scope:

* ``key`` or ``model.key``: a model hyperparameter;
* ``dataset.key``: a dataset argument; ``budget.steps`` / ``budget.batch_size``: the budget;
* ``METRIC.key`` (e.g. ``higgins.num_train``): a setting of that metric;
* ``MODEL.key`` in a sweep of several models: a hyperparameter of that model's runs only.

:func:`check_config` validates everything a run was given before any work starts.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from dbench.engine.config import RunConfig

BUDGET_FIELDS = ("steps", "batch_size", "checkpoint_every")
RESERVED_SCOPES = frozenset({"model", "dataset", "budget"})


def parse_value(text: str) -> Any:
    """JSON literal when it parses (4, 0.5, true, [1,2], "x"), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_items(items: Iterable[str], flag: str = "--set") -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{k: typed v}`` (a key given twice: the last one wins)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"{flag} expects key=value; got {item!r}")
        out[key] = parse_value(raw.strip())
    return out


def merge(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Flat settings layers combined; a later layer's value wins."""
    out: dict[str, Any] = {}
    for layer in layers:
        out.update(layer or {})
    return out


def for_model(
    layer: Mapping[str, Any] | None, model: str, model_names: Collection[str]
) -> dict[str, Any]:
    """One layer with ``MODEL.key`` for ``model`` written as plain ``key``.

    Applied to each layer *before* :func:`merge`, so a model-scoped value competes with a
    plain one by layer (command line > preset), not by the order keys happen to appear in.
    Other models' ``MODEL.key`` entries are kept; :func:`route` leaves them out.
    """
    out: dict[str, Any] = {}
    for key, value in (layer or {}).items():
        scope, dot, name = key.partition(".")
        if dot and scope == model and scope in model_names and scope not in RESERVED_SCOPES:
            out.pop(name, None)
            out[name] = value
        else:
            out[key] = value
    return out


@dataclass
class Scoped:
    """Settings sorted by scope."""

    model: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)


def route(
    settings: Mapping[str, Any],
    metric_names: Collection[str],
    *,
    model: str | None = None,
    model_names: Collection[str] = (),
) -> Scoped:
    """Sort flat settings into scopes (see the module docstring).

    ``model``/``model_names``: in a sweep over several models, ``MODEL.key`` keys whose
    MODEL is another model of ``model_names`` are left out of this model's runs.
    """
    out = Scoped()
    for key, value in settings.items():
        scope, dot, name = key.partition(".")
        if not dot:
            out.model[key] = value
        elif not name:
            raise UserError(f"setting {key!r} has no name after the dot")
        elif scope in ("model", "dataset"):
            getattr(out, scope)[name] = value
        elif scope == "budget":
            if name not in BUDGET_FIELDS:
                raise UserError(f"unknown budget field {name!r} ({', '.join(BUDGET_FIELDS)})")
            out.budget[name] = value
        elif scope in metric_names:
            out.metrics.setdefault(scope, {})[name] = value
        elif scope in model_names:
            if scope == model:
                out.model[name] = value
        else:
            raise UserError(
                f"setting {key}: unknown scope {scope!r} (model, dataset, budget or a metric name)"
            )
    return out


def apply(config: RunConfig, settings: Mapping[str, Any], **route_kwargs: Any) -> RunConfig:
    """``config`` with ``settings`` routed into it (its own values are the lower layer)."""
    from dbench.contracts import Budget
    from dbench.registry import METRICS

    scoped = route(settings, METRICS.names(), **route_kwargs)
    config.model_kwargs = merge(config.model_kwargs, scoped.model)
    config.dataset_kwargs = merge(config.dataset_kwargs, scoped.dataset)
    for name, values in scoped.metrics.items():
        config.metric_kwargs[name] = merge(config.metric_kwargs.get(name), values)
    if scoped.budget:
        config.budget = Budget(**merge(config.budget.as_dict(), scoped.budget))
        config.__post_init__()  # budget values checked as for a typed RunConfig
    return config


def check_metrics(metrics: list[str], metric_kwargs: Mapping[str, Mapping[str, Any]]) -> dict:
    """The specs of ``metrics``; their settings checked (names, types, choices, positivity)."""
    from dbench.registry import METRICS

    specs = {name: METRICS.get(name) for name in metrics}  # unknown names fail here
    for name, values in metric_kwargs.items():
        if name not in specs:
            raise UserError(f"settings given for metric {name!r}, which is not scored here")
        specs[name].check(values)
    return specs


def check_config(config: RunConfig, metrics: list[str]) -> Any:
    """Everything a run was given, checked before any work; returns the unfitted model.

    Models are built (cheap; catches bad values such as a negative beta); datasets are checked
    against their signatures only, since building one may render or read files.
    """
    from dbench.registry import DATASETS, MODELS

    DATASETS.entry(config.dataset)  # unknown names fail first, with a did-you-mean
    model = MODELS.create(config.model, **config.model_kwargs)
    DATASETS.check_kwargs(config.dataset, config.dataset_kwargs)
    check_metrics(metrics, config.metric_kwargs)
    return model
