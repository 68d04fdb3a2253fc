"""The contracts every dataset, model and metric honours (docs/ARCHITECTURE.md).

Three protocols and the small value types they exchange. Nothing here imports torch at module
level, so ``import dbench`` and ``dbench --help`` stay fast.

Decision recorded here: a metric does not receive a bare ``encode(images)`` function but a
:class:`~dbench.representation.Representation`, callable on *factor indices*. It renders
``Sim(v, w)`` and encodes, so (a) the ground-truth baseline can read the factors behind each
observation, and (b) one cache of encoded observations is shared by every metric of a run.
Models see an :class:`Observations` batch; learned models only touch ``.images``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch


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
    #: training checkpoints every N steps (None: the loop's default, 1,000). Recorded, but not
    #: part of a run's identity: it never changes the learned weights.
    checkpoint_every: int | None = None

    def resolved(self, default: Budget) -> Budget:
        return Budget(
            steps=self.steps if self.steps is not None else default.steps,
            batch_size=self.batch_size if self.batch_size is not None else default.batch_size,
            checkpoint_every=self.checkpoint_every,
        )

    def as_dict(self) -> dict[str, int | None]:
        """Steps and batch size (and the checkpoint interval when one was set)."""
        out = {"steps": self.steps, "batch_size": self.batch_size}
        if self.checkpoint_every is not None:
            out["checkpoint_every"] = self.checkpoint_every
        return out


def _no_progress(**_: Any) -> None:
    return None


@dataclass
class FitContext:
    """Everything ``Model.fit`` may use besides the data and the random generator.

    ``workdir`` is private to this run (checkpoints live there); ``resume`` asks the model to
    continue from the last checkpoint in it. ``report`` receives intermediate metrics (Ray Tune
    forwards them to its schedulers). Progress bars follow :func:`dbench.progress.quiet`, set
    once by whoever started the run, so the context carries no progress switch.
    ``precision`` is ``auto``, ``fp32`` or ``bf16`` (:mod:`dbench.models.precision`); models
    that train with torch honour it and record the precision they used.
    """

    device: str = "cpu"
    precision: str = "auto"
    budget: Budget = field(default_factory=Budget)
    workdir: Path | None = None
    resume: bool = False
    report: Callable[..., None] = _no_progress


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


# -- declared capabilities ---------------------------------------------------------------------
# Optional abilities are protocols checked with ``isinstance``, never guessed from attribute
# probes or module names. A component that has the members has the capability, whatever its
# base class: plugins need not inherit from anything of dbench's.


@runtime_checkable
class FiniteGrid(Protocol):
    """A simulator whose factors live on a finite grid, numbered in row-major order.

    ``index_of``/``factors_of`` convert between factor vectors (n, K) and grid indices (n,).
    ``has_nuisance`` says whether Sim(v, w) depends on a nuisance w; only when it does not do
    equal indices mean equal images, so a run may encode each grid point once and share it.
    """

    num_observations: int
    has_nuisance: bool

    def index_of(self, v: np.ndarray) -> np.ndarray: ...

    def factors_of(self, index: np.ndarray) -> np.ndarray: ...


def encodes_by_index(sim: Any) -> bool:
    """True when each grid index is one fixed image (a finite grid without nuisance)."""
    return isinstance(sim, FiniteGrid) and not sim.has_nuisance


@runtime_checkable
class SharesFactors(Protocol):
    """A dataset that is not a full factor grid but can draw observations sharing a value.

    ``sample_sharing(factor, values, rng)`` returns factor vectors (n, K), row i drawn among
    the observations whose factor ``factor[i]`` equals ``values[i]``. Metrics that hold one
    factor fixed (the Higgins and FactorVAE scores) use it instead of overwriting a column,
    which on a grid is exact but on labelled data may name a combination that does not exist.
    """

    def sample_sharing(
        self, factor: np.ndarray, values: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray: ...


@runtime_checkable
class PairSampler(Protocol):
    """A dataset that draws pairs of factor vectors differing in a few factors (weak
    supervision, Locatello et al. 2020, "Weakly-Supervised Disentanglement Without
    Compromises": pairs that share all but k unknown factors).

    ``sample_pairs(n, k, rng)`` returns ``(v1, v2)``, both (n, K) int64: ``v1`` drawn as
    ``sample_factors`` draws, ``v2`` equal to it except in exactly k factors, redrawn to
    differ. ``k=None`` draws k per pair uniformly from 1..d-1 (d factors that vary: the
    paper's "k = rnd"). Factors with a single value are never chosen. Both vectors name
    observations ``sim`` renders; models render them (or gather them by grid index).
    """

    def sample_pairs(
        self, n: int, k: int | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class Preparable(Protocol):
    """A dataset with a cache it builds once and reports on (``dbench data prepare | info``).

    ``prepare(progress)`` renders or converts the dataset into its cache and returns the path
    written; it must succeed over a corrupt cache, never reading it. ``cache_state()`` is one
    line: ``ready: PATH``, ``absent (...)``, ``corrupt: ...`` (saying how to rebuild it) or
    ``not needed (...)``.
    """

    def prepare(self, progress: bool = True) -> Any: ...

    def cache_state(self) -> str: ...


@runtime_checkable
class CompactStorable(Protocol):
    """A dataset that can hold every observation compactly on one device for the training loop.

    ``compact_table(device)`` returns a :class:`dbench.datasets.base.CompactTable` or None.
    """

    def compact_table(self, device: str = "cpu") -> Any: ...


@runtime_checkable
class Decoder(Protocol):
    """A model that maps codes back to images: ``decode(z) -> (n, C, H, W)`` in [0, 1]."""

    def decode(self, z: Any) -> Any: ...


@runtime_checkable
class HasParams(Protocol):
    """A model that reports its resolved hyperparameters (defaults filled in) for the record."""

    def get_params(self) -> dict[str, Any]: ...


@runtime_checkable
class Metric(Protocol):
    """A metric: ``metric(sim, rep, rng, **settings) -> {score name: value}``.

    Registered metrics are held as :class:`dbench.metric_spec.MetricSpec` objects, which add
    the declaration (version, headline score, directions, fast settings) to the function.
    """

    def __call__(self, sim: Any, rep: Any, rng: np.random.Generator, **settings: Any) -> Any: ...
