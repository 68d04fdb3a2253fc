"""What a configuration is: the parts of a run record that decide which runs average together.

A configuration is (dataset, data source, data checksum, the dataset's resolved kwargs, model,
the model's resolved hyperparameters, budget, metric protocol). Everything is *resolved*:

- hyperparameters are the model's full ``get_params()`` (defaults filled in), so ``pca`` and
  ``pca n_components=10`` are one configuration. Records that lack ``model.params`` (older
  ones) get the defaults of the registered model;
- dataset kwargs are the constructor's defaults overlaid with the kwargs given, without the
  knobs that change where or how fast images are made, not which images (device, data folder,
  file path, table size); the data source and its checksum join them;
- the budget is steps and batch size, plus the training precision when it is not float32;
- a metric protocol is the metric's name, version and settings with the metric's defaults
  (and its ``fast`` preset) filled in.

Numbers are compared by value (``4`` and ``4.0`` are one beta). Each key is a canonical JSON
string, so pandas can group on it.
"""

from __future__ import annotations

import inspect
import json
import math
from functools import lru_cache
from typing import Any

from dbench.engine.store import RunRecord

#: dataset kwargs that change where or how fast images are made, not which images
NOT_DATA = frozenset({"device", "data_dir", "source", "path", "table_after"})


# -- canonical values ------------------------------------------------------------------------
def canon(value: Any) -> Any:
    """A JSON-ready value in which equal numbers are equal (``4.0`` -> ``4``), tuples lists."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        return float(value)
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canon(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if hasattr(value, "item"):  # numpy scalars
        return canon(value.item())
    return str(value)


def key_text(value: Any) -> str:
    return json.dumps(canon(value), sort_keys=True)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# -- the model -------------------------------------------------------------------------------
@lru_cache(maxsize=512)
def _registered_params(model: str, kwargs_json: str) -> str | None:
    """``get_params()`` of the registered model built with these kwargs (JSON), or None."""
    kwargs = json.loads(kwargs_json)
    try:
        from dbench.contracts import HasParams
        from dbench.registry import MODELS

        built = MODELS.create(model, **kwargs)
        if isinstance(built, HasParams):
            return json.dumps(canon(built.get_params()))
    except Exception:  # noqa: BLE001 - an unregistered plugin or kwargs it no longer takes
        pass
    try:
        from dbench.registry import MODELS

        params = inspect.signature(MODELS.get(model)).parameters.values()
        defaults = {
            p.name: p.default
            for p in params
            if p.default is not p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        return json.dumps(canon({**defaults, **kwargs}))
    except Exception:  # noqa: BLE001
        return None


def model_defaults(model: str) -> dict[str, Any] | None:
    """The registered model's hyperparameters with no kwargs; None when it is not registered."""
    text = _registered_params(model, "{}")
    return None if text is None else json.loads(text)


def model_params(record: RunRecord) -> dict[str, Any]:
    """The run's resolved hyperparameters: the record's ``model.params`` over the registered
    defaults (older records lack some or all of them), canonical values."""
    config = record["config"]
    kwargs = _mapping(config.get("model_kwargs"))
    recorded = _mapping(_mapping(record.get("model")).get("params"))
    resolved = _registered_params(config["model"], json.dumps(canon(kwargs), sort_keys=True))
    base = json.loads(resolved) if resolved is not None else {}
    return canon({**base, **kwargs, **recorded})


# -- the data --------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _dataset_defaults(name: str) -> str:
    try:
        from dbench.registry import DATASETS

        params = inspect.signature(DATASETS.get(name)).parameters.values()
        defaults = {
            p.name: p.default
            for p in params
            if p.default is not p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name not in NOT_DATA
        }
    except Exception:  # noqa: BLE001 - an unregistered dataset: its records still load
        defaults = {}
    return json.dumps(canon(defaults))


def dataset_defaults(name: str) -> dict[str, Any]:
    return json.loads(_dataset_defaults(name))


def data_kwargs(record: RunRecord) -> dict[str, Any]:
    """The dataset's resolved kwargs (defaults filled in) that decide which images it makes."""
    config = record["config"]
    given = {k: v for k, v in _mapping(config.get("dataset_kwargs")).items() if k not in NOT_DATA}
    return canon({**dataset_defaults(config["dataset"]), **given})


def data_identity(record: RunRecord) -> dict[str, Any]:
    info = _mapping(record.get("dataset"))
    return {
        "source": info.get("source") or "unknown",
        "checksum": info.get("checksum"),
        "kwargs": data_kwargs(record),
    }


# -- the budget ------------------------------------------------------------------------------
def budget_of(record: RunRecord) -> dict[str, Any]:
    """``{steps, batch_size}`` as resolved for the run, plus ``precision`` when it trained in
    less than float32 (so bf16 and fp32 runs never average together); ``{}`` for records
    from before budgets."""
    budget = dict(_mapping(record.get("budget") or _mapping(record["config"].get("budget"))))
    precision = _mapping(record.get("training")).get("precision")
    if budget and precision not in (None, "float32"):
        budget["precision"] = precision
    return canon(budget)


# -- the metric protocol ---------------------------------------------------------------------
def _resolved_settings(metric: str, settings: dict[str, Any]) -> dict[str, Any]:
    try:
        from dbench.registry import METRICS

        spec = METRICS.get(metric)
        defaults = {k: v for k, v in spec.defaults().items() if k != "fast"}
        return canon({**defaults, **spec.resolve(settings)})
    except Exception:  # noqa: BLE001 - an unregistered plugin metric: settings as recorded
        return canon(settings)


def protocol(record: RunRecord) -> dict[str, Any]:
    """``{metric: {version, settings}}`` for every metric the run scored (settings resolved)."""
    meta = _mapping(record.get("metrics"))
    config_settings = _mapping(record["config"].get("metric_kwargs"))
    out = {}
    for name in sorted(record["scores"]):
        info = _mapping(meta.get(name))
        # Each score's own settings (a rescore may have changed them); older records: config's.
        own = info.get("settings", config_settings.get(name, {}))
        out[name] = {
            "version": info.get("version"),
            "settings": _resolved_settings(name, _mapping(own)),
        }
    return out


def protocol_of(protocol_json: str, metric: str) -> str:
    """The part of a ``protocol`` key (JSON) that concerns one metric."""
    proto = json.loads(protocol_json)
    return json.dumps({metric: proto[metric]} if metric in proto else {}, sort_keys=True)


def protocol_text(protocol_json: str, only_changed: bool = True) -> str:
    """``higgins v1 (num_train=200)``: settings that differ from the metric's defaults."""
    try:
        proto = json.loads(protocol_json)
    except (TypeError, ValueError):
        return str(protocol_json)
    parts = []
    for name, info in sorted(proto.items()):
        settings = _mapping(info.get("settings"))
        if only_changed:
            defaults = _resolved_settings(name, {})
            settings = {k: v for k, v in settings.items() if defaults.get(k, object()) != v}
        shown = ", ".join(f"{k}={_plain(v)}" for k, v in sorted(settings.items()))
        version = info.get("version")
        text = name + (f" v{version}" if version is not None else " (version unknown)")
        parts.append(text + (f" ({shown})" if shown else ""))
    return "; ".join(parts)


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)
