"""The contracts every dataset, model and metric honours (see DESIGN.md).

Three protocols and the small value types they exchange. Nothing here imports torch at module
level, so ``import dbench`` and ``dbench --help`` stay fast.

Decision recorded here: a metric does not receive a bare ``encode(images)`` function but a
:class:`~dbench.representation.Representation`, callable on *factor indices*. It renders
``Sim(v, w)`` and encodes, so (a) the ground-truth baseline can read the factors behind each
observation, and (b) one cache of encoded observations is shared by every metric of a run.
Models see an :class:`Observations` batch; learned models only touch ``.images``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from dbench.representation import Representation


@runtime_checkable
class Simulator(Protocol):
    """A ground-truth simulator ``x ~ Sim(v, w)`` (Higgins et al. 2017, Sec. 3)."""

    name: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    observation_shape: tuple[int, int, int]  # (C, H, W)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, K) int64 factor indices, each factor uniform over its values."""

    def sample_nuisance(self, n: int, rng: np.random.Generator) -> np.ndarray | None:
        """(n, ...) nuisance w, or None when the dataset has none."""

    def sim(self, v: np.ndarray, w: np.ndarray | None = None) -> torch.Tensor:
        """(n, C, H, W) float32 images in [0, 1] for factor indices v (and nuisance w)."""

    def describe(self) -> dict[str, Any]:
        """Provenance for run records: at least ``source`` and ``checksum``."""


@dataclass
class Observations:
    """A batch handed to :meth:`Model.encode`: images plus the factors behind them.

    ``images`` is rendered lazily, so representations that never look at pixels (the
    ground-truth ``oracle``) cost nothing to evaluate.
    """

    factors: np.ndarray
    nuisance: np.ndarray | None
    _render: Callable[[], torch.Tensor] = field(repr=False)
    _images: Any = field(default=None, repr=False)

    @property
    def images(self) -> torch.Tensor:
        if self._images is None:
            self._images = self._render()
        return self._images

    def __len__(self) -> int:
        return len(self.factors)


@dataclass(frozen=True)
class Budget:
    """Training budget; part of a run's identity (different budgets never average together).

    ``None`` fields mean "the model's default" and are resolved before the run is recorded.
    """

    steps: int | None = None
    batch_size: int | None = None

    def resolved(self, default: Budget) -> Budget:
        return Budget(
            steps=self.steps if self.steps is not None else default.steps,
            batch_size=self.batch_size if self.batch_size is not None else default.batch_size,
        )

    def as_dict(self) -> dict[str, int | None]:
        return {"steps": self.steps, "batch_size": self.batch_size}


def _no_progress(**_: Any) -> None:
    return None


@dataclass
class FitContext:
    """Everything ``Model.fit`` may use besides the data and the random generator.

    ``workdir`` is private to this run (checkpoints live there); ``resume`` asks the model to
    continue from the last checkpoint in it. ``report`` receives intermediate metrics (Ray Tune
    forwards them to its schedulers); ``progress`` is a ready progress-bar factory.
    """

    device: str = "cpu"
    budget: Budget = field(default_factory=Budget)
    workdir: Path | None = None
    resume: bool = False
    show_progress: bool = True
    report: Callable[..., None] = _no_progress
    threads: int | None = None


@runtime_checkable
class Model(Protocol):
    """A representation learner. Hyperparameters are ``__init__`` kwargs, stored as given;
    learned state ends in ``_`` (scikit-learn's conventions)."""

    default_budget: Budget

    def fit(self, sim: Simulator, rng: np.random.Generator, ctx: FitContext) -> Model: ...

    def encode(self, obs: Observations) -> Any:
        """(n, D) mean representation (no sampling); a tensor or an array."""

    def save(self, path: Path) -> None: ...

    def load(self, path: Path) -> Model: ...


MetricFn = Callable[["Simulator", "Representation", np.random.Generator], dict[str, float]]


def metric(
    *, version: str, primary: str, lower_is_better: Iterable[str] = (), cheap: bool = True
) -> Callable[[Callable[..., dict[str, float]]], Callable[..., dict[str, float]]]:
    """Declare a metric function: its version, headline score and score directions.

    ``cheap`` metrics run by default in ``dbench run``; the others only when named.
    """

    def mark(fn: Callable[..., dict[str, float]]) -> Callable[..., dict[str, float]]:
        fn.metric_version = version  # type: ignore[attr-defined]
        fn.primary = primary  # type: ignore[attr-defined]
        fn.lower_is_better = frozenset(lower_is_better)  # type: ignore[attr-defined]
        fn.cheap = cheap  # type: ignore[attr-defined]
        return fn

    return mark


def metric_info(fn: Callable[..., Any]) -> dict[str, Any]:
    """Version, headline and directions of a metric (plugins without the decorator get defaults)."""
    return {
        "version": getattr(fn, "metric_version", "unversioned"),
        "primary": getattr(fn, "primary", None),
        "lower_is_better": sorted(getattr(fn, "lower_is_better", ())),
    }
