"""The representation a metric scores: factors -> Sim(v, w) -> model.encode -> (n, D) array.

On a finite grid without nuisance factors, each distinct observation is rendered and encoded
at most once per :class:`Representation`; every metric of a run shares one instance, so a run
encodes each image at most once whatever the metrics sample.
Datasets with nuisance factors fall back to rendering and encoding what is sampled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dbench.contracts import Observations, Simulator, encodes_by_index
from dbench.errors import UserError
from dbench.progress import progress_bar


def _to_numpy(z: Any) -> np.ndarray:
    if hasattr(z, "detach"):
        z = z.detach().float().cpu().numpy()
    return np.asarray(z, dtype=np.float64).reshape(len(z), -1)


class Representation:
    """Callable ``rep(v, rng) -> (n, D) float64`` for factor indices ``v`` (n, K).

    ``rng`` draws the nuisance w when the simulator has one. ``encoded`` counts observations
    actually encoded, ``requested`` those asked for (tests and benchmarks read them).
    """

    def __init__(
        self,
        sim: Simulator,
        encode: Callable[[Observations], Any],
        *,
        batch_size: int = 1024,
        cache: bool = True,
        max_table_bytes: int = 2 * 1024**3,
    ):
        self.sim = sim
        self.encode = encode
        self.batch_size = batch_size
        #: observations are identified by their grid index (no nuisance changes the image)
        self.on_grid = encodes_by_index(sim)
        self.cache = cache and self.on_grid
        self.max_table_bytes = max_table_bytes
        self.encoded = 0
        self.requested = 0
        self._row_of: np.ndarray | None = None  # grid index -> row of _table, -1 if absent
        self._table: np.ndarray | None = None
        self._filled = 0

    def __call__(self, v: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        v = np.asarray(v, dtype=np.int64)
        self.requested += len(v)
        if not self.on_grid:
            w = self.sim.sample_nuisance(len(v), rng or np.random.default_rng(0))
            return self._encode_batched(v, w)
        index = self.sim.index_of(v)
        rows = self._rows(index)
        missing = rows < 0
        if not missing.any():
            return self._table[rows]
        new_index, inverse = np.unique(index[missing], return_inverse=True)
        new_z = self._encode_batched(self.sim.factors_of(new_index), None)
        if self.cache and self._table is None and not self._fits(new_z):
            # Too wide to keep for the whole grid (raw pixels): deduplicate per call only.
            self.cache = False
        if not self.cache:
            return new_z[inverse]
        self._store(new_index, new_z)
        return self._table[self._rows(index)]

    def _fits(self, z: np.ndarray) -> bool:
        return z.shape[1] * z.itemsize * self.sim.num_observations <= self.max_table_bytes

    # -- cache -------------------------------------------------------------------------------
    def _rows(self, index: np.ndarray) -> np.ndarray:
        if self._row_of is None or not self.cache:
            return np.full(len(index), -1, dtype=np.int64)
        return self._row_of[index]

    def _store(self, index: np.ndarray, z: np.ndarray) -> None:
        if self._table is None:
            self._table = np.empty((max(len(index), 1024), z.shape[1]), dtype=z.dtype)
            self._row_of = np.full(self.sim.num_observations, -1, dtype=np.int64)
        while self._filled + len(z) > len(self._table):  # grow geometrically
            self._table = np.concatenate([self._table, np.empty_like(self._table)])
        self._table[self._filled : self._filled + len(z)] = z
        self._row_of[index] = np.arange(self._filled, self._filled + len(z))
        self._filled += len(z)

    # -- encoding ----------------------------------------------------------------------------
    def _encode_batched(self, v: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        parts = []
        # A bar only for big passes (e.g. the first pass over most of dSprites' grid); off
        # inside dbench.progress.quiet, like every bar.
        show = len(v) >= 20 * self.batch_size
        with progress_bar("encoding", len(v), enabled=show) as bar:
            for start in range(0, len(v), self.batch_size):
                vb = v[start : start + self.batch_size]
                wb = None if w is None else w[start : start + self.batch_size]
                obs = Observations(vb, wb, _render=lambda vb=vb, wb=wb: self.sim.sim(vb, wb))
                z = self.encode(obs)
                if getattr(z, "ndim", 2) not in (1, 2) or len(z) != len(vb):
                    shape = tuple(getattr(z, "shape", ()))
                    raise UserError(
                        f"encode returned shape {shape} for {len(vb)} images; expected "
                        f"({len(vb)}, D): one row of codes per image"
                    )
                parts.append(_to_numpy(z))
                self.encoded += len(vb)
                bar.advance(len(vb))
        if not parts:
            return np.empty((0, 0))
        return np.concatenate(parts)
