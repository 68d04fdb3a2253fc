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
