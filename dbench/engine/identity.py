"""One run, one identity: sameness is decided from what ran, never from how it was typed.

A run's identity is

- the dataset: its name, the resolved kwargs that decide which images it makes (defaults
  filled in; knobs of where or how fast images are made, such as ``device`` or ``data_dir``,
  left out), the source it loaded from and **the checksum of the data actually loaded** (a
  file's content hash, a cache's verified hash, or a procedural renderer's version);
- the model: its name, its resolved hyperparameters (``get_params()``: defaults filled in,
  ``4`` and ``4.0`` one value), its ``revision``, and for an outside encoder (``origin:
  evaluate``) a fingerprint of its function (weights, or codes on a probe batch, or the
  saved codes' content hash);
- the budget (steps, batch size) and the resolved training precision;
- the seed.

The metrics are not part of it: scores are measurements *on* a run, each under its own
protocol (:mod:`dbench.reporting.identity`). A **configuration** is the identity without the
seed; seeds of one configuration are what a leaderboard averages.

:func:`identity_of_record` computes the same identity from any record — those written by
this version carry it, older ones (schema 1) are resolved from their content — so the
trained path, ``evaluate``, sweeps, rescoring, ``dbench migrate`` and the reporting layer all
decide sameness with this one module.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dbench.checks import SEED_MAX

#: dataset kwargs that change where or how fast images are made, not which images
NOT_DATA = frozenset({"device", "data_dir", "source", "path", "table_after"})


# -- canonical values ------------------------------------------------------------------------
def canon(value: Any) -> Any:
    """A JSON-ready value in which equal numbers are equal (``4.0`` -> ``4``), tuples lists,
    mapping keys sorted. Booleans stay booleans (``True`` is not ``1``)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canon(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return canon(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


def key_text(value: Any) -> str:
    """Canonical JSON of ``value``: equal values, equal text (pandas groups on it)."""
    return json.dumps(canon(value), sort_keys=True)


def digest(value: Any) -> str:
    return hashlib.sha256(key_text(value).encode()).hexdigest()


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# -- resolved hyperparameters ----------------------------------------------------------------
def _signature_defaults(cls: Any, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    params = inspect.signature(cls).parameters.values()
    return {
        p.name: p.default
        for p in params
        if p.default is not p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in skip
    }


def params_of(model: Any, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The resolved hyperparameters of a built model: ``get_params()`` where it has one, else
    its constructor's defaults overlaid with ``kwargs`` (canonical values)."""
    from dbench.contracts import HasParams

    if isinstance(model, HasParams):
        return canon(model.get_params())
    try:
        return canon({**_signature_defaults(type(model)), **kwargs})
    except (TypeError, ValueError):
        return canon(kwargs)


@lru_cache(maxsize=1024)
def _registered_params(model: str, kwargs_json: str) -> str | None:
    """``params_of`` the registered model built with these kwargs (JSON), or None."""
    from dbench.registry import MODELS

    kwargs = json.loads(kwargs_json)
    try:
        return json.dumps(params_of(MODELS.create(model, **kwargs), model, kwargs))
    except Exception:  # noqa: BLE001 - an unregistered plugin or kwargs it no longer takes
        pass
    try:
        return json.dumps(canon({**_signature_defaults(MODELS.get(model)), **kwargs}))
    except Exception:  # noqa: BLE001
        return None


def registered_params(model: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The registered model's resolved hyperparameters for ``kwargs``; None if unknown."""
    text = _registered_params(model, key_text(kwargs))
    return None if text is None else json.loads(text)


@lru_cache(maxsize=256)
def _dataset_defaults(name: str) -> str:
    try:
        from dbench.registry import DATASETS

        defaults = _signature_defaults(DATASETS.get(name), NOT_DATA)
    except Exception:  # noqa: BLE001 - an unregistered dataset: its records still load
        defaults = {}
    return key_text(defaults)


def dataset_defaults(name: str) -> dict[str, Any]:
    return json.loads(_dataset_defaults(name))


def data_kwargs(dataset: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The dataset's resolved kwargs (defaults filled in) that decide which images it makes."""
    given = {k: v for k, v in _mapping(kwargs).items() if k not in NOT_DATA}
    return canon({**dataset_defaults(dataset), **given})


# -- the identity ----------------------------------------------------------------------------
class RunIdentity(BaseModel):
    """What ran. Two runs with equal identities are one run; without ``seed``, one
    configuration. Values are canonical (see :func:`canon`), so equality is by value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    source: str
    checksum: str | None
    data_kwargs: dict[str, Any]
    model: str
    origin: Literal["trained", "evaluate"] = "trained"
    params: dict[str, Any]
    revision: int = 1
    fingerprint: str | None = None
    budget: dict[str, int | None]
    precision: str | None = None
    seed: int = Field(ge=0, le=SEED_MAX)

    def configuration(self) -> dict[str, Any]:
        """The identity without the seed: what the seeds of a leaderboard row share."""
        return canon(self.model_dump(exclude={"seed"}))

    @property
    def config_key(self) -> str:
        return digest(self.configuration())

    @property
    def key(self) -> str:
        return digest(canon(self.model_dump()))

    @property
    def run_id(self) -> str:
        """``<dataset>-<model>-<hash of the identity>-s<seed>``."""
        return f"{self.dataset}-{self.model}-{self.key[:10]}-s{self.seed}"


def run_key(configuration: dict[str, Any], seed: int) -> str:
    """``RunIdentity.key`` from the identity's :meth:`~RunIdentity.configuration` and its
    seed: the same canonical text (keys sorted), without canonicalising the configuration
    again for every seed of it (a leaderboard keys thousands of runs)."""
    text = json.dumps({**configuration, "seed": canon(seed)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def make_identity(
    *,
    dataset: str,
    dataset_kwargs: dict[str, Any],
    dataset_info: dict[str, Any],
    model: str,
    params: dict[str, Any],
    seed: int,
    budget: dict[str, Any] | None = None,
    precision: str | None = None,
    revision: int = 1,
    origin: str = "trained",
    fingerprint: str | None = None,
) -> RunIdentity:
    """The one constructor: every caller passes resolved values; this canonicalises them."""
    budget = _mapping(budget)
    return RunIdentity(
        dataset=dataset,
        source=str(dataset_info.get("source") or "unknown"),
        checksum=None if dataset_info.get("checksum") is None else str(dataset_info["checksum"]),
        data_kwargs=data_kwargs(dataset, dataset_kwargs),
        model=model,
        origin=origin,
        params=canon(params),
        revision=int(revision),
        fingerprint=fingerprint,
        budget={"steps": budget.get("steps"), "batch_size": budget.get("batch_size")},
        precision=precision,
        seed=seed,
    )


def identity_of_record(record: dict[str, Any]) -> RunIdentity:
    """The identity of the run a record describes.

    Records written since schema 2 carry it under ``identity``; older records are resolved
    from their content: the recorded ``model.params`` over the registered model's defaults,
    the dataset kwargs over the dataset's defaults, the recorded source and checksum, the
    budget, the training precision, and the revision and fingerprint they recorded. Raises
    ``ValueError`` (pydantic's ``ValidationError``) when a record's parts are malformed.
    """
    if record.get("schema", 1) >= 2:
        return RunIdentity.model_validate(record.get("identity"))
    config = record["config"]
    old = _mapping(record.get("identity"))
    origin = "evaluate" if record.get("origin") == "evaluate" else "trained"
    kwargs = _mapping(config.get("model_kwargs"))
    recorded = _mapping(_mapping(record.get("model")).get("params"))
    if origin == "evaluate":
        params: dict[str, Any] = {}
    else:
        params = {**(registered_params(config["model"], kwargs) or {}), **kwargs, **recorded}
    budget = _mapping(record.get("budget") or config.get("budget"))
    precision = _mapping(record.get("training")).get("precision") or old.get("precision")
    return make_identity(
        dataset=config["dataset"],
        dataset_kwargs=_mapping(config.get("dataset_kwargs")),
        dataset_info={
            "source": _mapping(record.get("dataset")).get("source") or old.get("source"),
            "checksum": _mapping(record.get("dataset")).get("checksum"),
        },
        model=config["model"],
        params=params,
        seed=config["seed"],
        budget=budget,
        precision=precision,
        revision=old.get("model_revision", 1),
        origin=origin,
        fingerprint=old.get("fingerprint") or _mapping(record.get("model")).get("fingerprint"),
    )


# -- a score's protocol ----------------------------------------------------------------------
def metric_settings(metric: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A metric's settings with its defaults (and its ``fast`` preset) filled in: two
    spellings of one protocol compare equal. Unregistered plugin metrics: as given."""
    return json.loads(_metric_settings(metric, key_text(settings)))


@lru_cache(maxsize=4096)  # a leaderboard asks this for every record and metric
def _metric_settings(metric: str, settings_json: str) -> str:
    settings = json.loads(settings_json)
    try:
        from dbench.registry import METRICS

        spec = METRICS.get(metric)
        defaults = {k: v for k, v in spec.defaults().items() if k != "fast"}
        return key_text({**defaults, **spec.resolve(settings)})
    except Exception:  # noqa: BLE001 - an unregistered plugin metric: settings as recorded
        return key_text(settings)


def recorded_protocol(record: dict[str, Any], metric: str) -> dict[str, Any]:
    """``{version, settings}`` of one score in a record (settings resolved). Each score keeps
    its own settings (a rescore may have changed them); older records: the config's."""
    info = _mapping(_mapping(record.get("metrics")).get(metric))
    resolved = info.get("resolved_settings")
    if isinstance(resolved, dict):  # what the metric ran with; a setting added since: default
        settings = canon({**metric_settings(metric, {}), **resolved})
    else:
        given = _mapping(record["config"].get("metric_kwargs")).get(metric, {})
        settings = metric_settings(metric, _mapping(info.get("settings", given)))
    return {"version": info.get("version"), "settings": settings}
