"""Shared machinery of simulators whose factors live on a finite grid.

A grid simulator numbers its observations in row-major order over ``factor_sizes`` (the last
factor varies fastest), which is the order of the public dSprites, 3D faces and 3dshapes files.
That index is what lets every metric of a run share one table of encoded observations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class CompactTable:
    """Every observation of a grid dataset, stored compactly on one device, in grid order.

    ``data[i]`` holds observation i in a compact form (dSprites: 512 bytes of packed bits);
    ``decode(rows)`` turns gathered rows into float images (n, C, H, W) in [0, 1] on the
    same device. The training loop draws batch indices on the device and gathers with
    ``data.index_select(0, idx)``, so no Python data loading sits in its hot loop.
    """

    data: torch.Tensor
    decode: Callable[[torch.Tensor], torch.Tensor]


def pair_ks(n: int, k: int | None, d: int, rng: np.random.Generator, name: str) -> np.ndarray:
    """(n,) how many of d varying factors each of n pairs changes: ``k``, or with ``k=None``
    drawn per pair from 1..d-1 (Locatello et al. 2020's "k = rnd"; 1 when d = 1). Shared by
    every :class:`~dbench.contracts.PairSampler` here, so grids and labelled data agree."""
    if k is None:
        ks = rng.integers(1, max(d - 1, 1), endpoint=True, size=n)
    else:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"{name}: k must be an int or None; got {k!r}")
        if not 1 <= k <= d:
            raise ValueError(f"{name}: k must be in 1..{d} (factors that vary); got {k}")
        ks = np.full(n, int(k), dtype=np.int64)
    return ks


class GridSimulator:
    """Base class: uniform factor sampling, grid indexing and argument checks.

    Subclasses set ``name``, ``factor_names``, ``factor_sizes``, ``observation_shape`` and
    implement :meth:`sim` (and :meth:`sample_nuisance` when they have nuisance factors).
    """

    name: str = "grid"
    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    observation_shape: tuple[int, int, int] = (1, 64, 64)
    #: True when Sim(v, w) depends on a nuisance w: then equal v do not mean equal images,
    #: and metrics cannot reuse an encoding by grid index.
    has_nuisance: bool = False

    @property
    def num_observations(self) -> int:
        return int(np.prod(self.factor_sizes, dtype=np.int64))

    @property
    def strides(self) -> np.ndarray:
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return rng.integers(0, sizes, size=(n, len(sizes)), dtype=np.int64)

    def sample_nuisance(self, n: int, rng: np.random.Generator) -> np.ndarray | None:
        return None

    def sample_pairs(
        self, n: int, k: int | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pairs of factor vectors (v1, v2) that differ in exactly k factors
        (:class:`~dbench.contracts.PairSampler`; Locatello et al. 2020).

        ``v1`` comes from :meth:`sample_factors`; k of the factors with more than one value
        are chosen per pair, uniformly without replacement, and each is redrawn uniformly
        among its *other* values (so a grid's ``v2`` is uniform too). ``k=None`` draws k per
        pair uniformly from 1..d-1, d the number of factors that vary (1 when d = 1): the
        paper's "k = rnd", in which a pair always shares a factor.
        """
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        varying = np.flatnonzero(sizes > 1)
        d = len(varying)
        if d == 0:
            raise ValueError(f"{self.name}: no factor has more than one value: no pairs to draw")
        ks = pair_ks(n, k, d, rng, self.name)
        v1 = self.check_factors(self.sample_factors(n, rng))
        keys = rng.random((n, d))
        chosen = np.argsort(np.argsort(keys, axis=1), axis=1) < ks[:, None]  # k random ranks
        shift = rng.integers(1, sizes[varying], size=(n, d))  # 1..size-1: never the old value
        old = v1[:, varying]
        v2 = v1.copy()
        v2[:, varying] = np.where(chosen, (old + shift) % sizes[varying], old)
        return v1, v2

    def compact_table(self, device: str = "cpu") -> CompactTable | None:
        """The whole dataset as a :class:`CompactTable`, or None if it cannot be stored.

        Datasets with nuisance factors return None: their images are drawn with ``sim``.
        """
        return None

    def index_of(self, v: np.ndarray) -> np.ndarray:
        """Row-major grid index of each factor vector (last factor fastest)."""
        v = self.check_factors(v)
        return v @ self.strides

    def factors_of(self, index: np.ndarray) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        return (index[:, None] // self.strides) % np.asarray(self.factor_sizes, dtype=np.int64)

    def check_factors(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v)
        if v.ndim != 2 or v.shape[1] != len(self.factor_sizes):
            raise ValueError(
                f"{self.name}: factors must have shape (n, {len(self.factor_sizes)}), got {v.shape}"
            )
        v = v.astype(np.int64, copy=False)
        if v.size and ((v < 0).any() or (v >= np.asarray(self.factor_sizes)).any()):
            raise ValueError(f"{self.name}: factor index out of range {self.factor_sizes}")
        return v

    def describe(self) -> dict[str, Any]:
        """Provenance for records. This default names a procedural simulator by its class and
        grid (datasets that read files or have settings override it with a content hash)."""
        import hashlib
        import json

        cls = type(self)
        key = {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "factor_sizes": list(self.factor_sizes),
            "observation_shape": list(self.observation_shape),
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return {
            "name": self.name,
            "factor_names": list(self.factor_names),
            "factor_sizes": list(self.factor_sizes),
            "observation_shape": list(self.observation_shape),
            "source": "procedural",
            "checksum": f"procedural:{digest}",
        }
