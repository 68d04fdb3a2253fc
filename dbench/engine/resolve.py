"""From a :class:`RunConfig` to a concrete run: dataset, model, budget, metrics, identity, id.

``run_one`` and the sweep trials (which skip runs whose record exists) call
:func:`resolve_run`; the identity itself (and so the run id) comes from
:func:`dbench.engine.identity.make_identity`, from resolved values only: the built model's
``get_params()``, the loaded data's checksum, the resolved budget and precision. The metric
list is not part of it: scoring more metrics is scoring the same run.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from dbench.contracts import Budget
from dbench.engine.config import RunConfig
from dbench.engine.identity import RunIdentity, make_identity, params_of
from dbench.engine.settings import check_config
from dbench.errors import UserError
from dbench.paths import data_root
from dbench.registry import DATASETS, METRICS


def default_metrics() -> list[str]:
    """The metrics ``dbench run`` scores when none are named: those declared cheap."""
    return [n for n in METRICS.names() if METRICS.get(n).cheap]


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """An independent generator per named stream, so adding a metric changes no other score."""
    key = int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, key])


def make_dataset(name: str, kwargs: dict[str, Any], data_dir: str | None = None) -> Any:
    """A dataset by name; ``data_dir`` is passed to datasets that read files."""
    cls = DATASETS.get(name)
    kwargs = dict(kwargs)
    if "data_dir" in inspect.signature(cls).parameters:
        kwargs.setdefault("data_dir", str(data_root(data_dir)))
    return DATASETS.create(name, **kwargs)


def training_choice(config: RunConfig, model: Any, sim: Any) -> Any:
    """How ``model`` will train (and encode) on this machine, as a
    :class:`dbench.models.precision.Choice` (asked, chosen, measured ratio), or None when it
    does not train with dbench's torch loop (PCA, ICA, the oracle, most plugins).

    ``auto`` on a CPU times a few training steps of ``model``'s architecture on ``sim``'s
    observation shape in fp32 and bf16, once per machine and architecture (cached;
    :func:`dbench.models.precision.choose_precision`): the run's identity depends on it, so
    it is decided here, before the run is named, and the loop is handed the result.
    """
    from dbench.models.precision import choose_precision, resolve_device
    from dbench.models.training import Trainable

    if not isinstance(model, Trainable):
        return None
    return choose_precision(config.precision, resolve_device(config.device), model, sim)


def check_plugins(config: RunConfig, sim: Any, model: Any) -> None:
    """A plugin's dataset and model against the contract, before any work: the first broken
    member is one line naming the plugin (built-ins are covered by dbench's own tests)."""
    from dbench.registry import MODELS
    from dbench.testing.dataset import check_dataset
    from dbench.testing.model import check_members

    for kind, entry, results in (
        ("dataset", DATASETS.entry(config.dataset), lambda: check_dataset(sim, n=2)),
        ("model", MODELS.entry(config.model), lambda: check_members(model)),
    ):
        if entry.distribution is None:
            continue
        broken = next((r for r in results() if not r.passed and not r.skipped), None)
        if broken is not None:
            raise UserError(
                f"{kind} {entry.name!r} from plugin {entry.distribution} breaks the dbench "
                f"contract ({broken.name}): {broken.message.splitlines()[0]}"
            )


@dataclass
class ResolvedRun:
    """A run with every default filled in; nothing trained yet."""

    config: RunConfig
    sim: Any
    model: Any
    budget: Budget
    metrics: list[str]
    specs: dict[str, Any]
    dataset_info: dict[str, Any]
    identity: RunIdentity
    precision: str | None = None
    precision_choice: dict[str, Any] | None = None  # asked, chosen, measured ratio (records)

    @property
    def run_id(self) -> str:
        return self.identity.run_id


def resolve_run(config: RunConfig) -> ResolvedRun:
    """Check ``config``, build its dataset and (unfitted) model, and name the run."""
    metrics = list(config.metrics) if config.metrics is not None else default_metrics()
    model = check_config(config, metrics)  # every setting checked before any work
    if "device" in config.dataset_kwargs:  # a dataset asked to render on a device we lack
        from dbench.models.precision import resolve_device

        resolve_device(str(config.dataset_kwargs["device"]))
    sim = make_dataset(config.dataset, config.dataset_kwargs, config.data_dir)
    check_plugins(config, sim, model)
    specs = {name: METRICS.get(name) for name in metrics}
    for name, spec in specs.items():  # what each metric needs of this dataset
        spec.check(config.metric_kwargs.get(name, {}), sim)
    budget = config.budget.resolved(getattr(model, "default_budget", Budget()))
    dataset_info = sim.describe()
    choice = training_choice(config, model, sim)  # None: not trained by the torch loop
    precision = choice.chosen if choice else None
    identity = make_identity(
        dataset=config.dataset,
        dataset_kwargs=config.dataset_kwargs,
        dataset_info=dataset_info,
        model=config.model,
        params=params_of(model, config.model, config.model_kwargs),
        seed=config.seed,
        budget=budget.as_dict(),
        precision=precision,
        revision=int(getattr(model, "revision", 1)),
    )
    choice_info = choice.as_dict() if choice else None  # for the record
    return ResolvedRun(
        config, sim, model, budget, metrics, specs, dataset_info, identity, precision, choice_info
    )
