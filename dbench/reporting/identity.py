"""The reporting layer's view of sameness: configurations from records, protocols of scores.

A configuration is a run's identity without its seed
(:class:`dbench.engine.identity.RunIdentity`: dataset, source, data checksum and resolved
dataset kwargs; model, resolved hyperparameters and revision, or an outside encoder's
fingerprint; budget; training precision), computed from each record by
:func:`dbench.engine.identity.identity_of_record`, the same function that names runs.

A metric protocol (the metric's name, version and settings with its defaults and ``fast``
preset filled in) belongs to each *score*, not to the run: a leaderboard averages a score
column over the seeds of a configuration that carry that metric under one protocol.

Numbers are compared by value (``4`` and ``4.0`` are one beta). Each key is a canonical JSON
string, so pandas can group on it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from dbench.engine.identity import (  # noqa: F401 - the reporting layer's names for them
    RunIdentity,
    canon,
    dataset_defaults,
    digest,
    identity_of_record,
    key_text,
    metric_settings,
    recorded_protocol,
    registered_params,
    run_key,
)
from dbench.engine.store import RunRecord


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


#: models' defaults (canonical JSON) read from a record index built by this same code
#: (:mod:`dbench.reporting.record_index`): resolving them loads the models' modules (torch)
_REMEMBERED: dict[str, str] = {}

#: the built-in models' defaults, written by :func:`write_builtin_defaults` (``make defaults``)
#: so that labelling a leaderboard loads no model module, and torch with it (1.6 s and about
#: 190 MB); ``tests/test_identity.py`` checks the file against every built-in model
BUILTIN_DEFAULTS = Path(__file__).with_name("builtin_defaults.json")


def model_defaults(model: str) -> dict[str, Any] | None:
    """The registered model's hyperparameters with no kwargs; None when it is not registered."""
    if model in _REMEMBERED:
        return json.loads(_REMEMBERED[model])
    builtin = _builtin_defaults().get(model)
    if builtin is not None and _is_builtin(model):
        return json.loads(builtin)
    return registered_params(model, {})


@lru_cache(maxsize=1)
def _builtin_defaults() -> dict[str, str]:
    try:
        data = json.loads(BUILTIN_DEFAULTS.read_text())
    except (OSError, ValueError):  # a broken install: resolve them from the models
        return {}
    return {m: key_text(p) for m, p in data.items() if isinstance(p, dict)}


def _is_builtin(model: str) -> bool:
    """Whether ``model`` names a built-in (a plugin could claim the name only by clashing,
    which the registry refuses)."""
    from dbench.registry import MODELS

    try:
        return MODELS.entry(model).distribution is None
    except Exception:  # noqa: BLE001 - an unknown name
        return False


def resolved_builtin_defaults() -> dict[str, dict[str, Any]]:
    """Every built-in model's defaults, resolved by building it (loads torch)."""
    from dbench.registry import MODELS

    return {name: registered_params(name, {}) for name in MODELS.names() if _is_builtin(name)}


def write_builtin_defaults() -> None:
    """Write :data:`BUILTIN_DEFAULTS` from the models themselves."""
    text = json.dumps(resolved_builtin_defaults(), indent=1, sort_keys=True)
    BUILTIN_DEFAULTS.write_text(text + "\n")


def defaults_text(model: str) -> str:
    """:func:`model_defaults` as canonical JSON (``null``: not registered)."""
    return key_text(model_defaults(model))


def remember_defaults(texts: dict[str, str]) -> None:
    """Keep models' defaults (canonical JSON of a mapping, or ``null``) for this process."""
    for model, text in texts.items():
        if isinstance(json.loads(text), (dict, type(None))):
            _REMEMBERED[model] = text


def model_params(record: RunRecord) -> dict[str, Any]:
    """The run's resolved hyperparameters (from its identity)."""
    return identity_of_record(record).params


def budget_of(record: RunRecord, ident: RunIdentity | None = None) -> dict[str, Any]:
    """``{steps, batch_size}`` as resolved for the run, plus ``precision`` when it trained in
    less than float32 (how budgets are shown); ``{}`` for records from before budgets."""
    ident = ident or identity_of_record(record)
    budget = dict(ident.budget)
    if budget and ident.precision not in (None, "float32"):
        budget["precision"] = ident.precision
    return canon(budget)


# -- the metric protocol ---------------------------------------------------------------------
def protocol(record: RunRecord) -> dict[str, Any]:
    """``{metric: {version, settings}}`` for every metric the run scored (settings resolved)."""
    return {name: recorded_protocol(record, name) for name in sorted(record["scores"])}


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
            defaults = metric_settings(name.partition("#")[0], {})  # higgins#2: higgins
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
