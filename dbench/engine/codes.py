"""Precomputed representations from a file (``dbench evaluate --representations FILE.npz``).

The ``.npz`` holds either ``z`` of shape (num_observations, D) in the dataset's grid order
(row-major over ``factor_sizes``, last factor fastest), or ``factors`` (m, K) grid indices
with ``z`` (m, D) for a subset of the grid. On a subset, metrics draw i.i.d. rows of it;
metrics that construct factor combinations themselves (the Higgins and FactorVAE scores fix
one factor and redraw the rest) need the full grid, and say so in one line when a
combination is not in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dbench.checks import MAX_CODE_DIMS, MAX_CODE_MAGNITUDE
from dbench.contracts import FiniteGrid, Observations
from dbench.datasets.files import NpzMember, npz_keys, sha256_file
from dbench.errors import UserError

MIN_ROWS = 10


def checked_codes(z: np.ndarray, what: str) -> np.ndarray:
    """Codes as a float64 (n, D) array within the stated limits, or one line saying which:
    real numbers (complex refused), 1..:data:`MAX_CODE_DIMS` columns, finite, magnitude at
    most :data:`MAX_CODE_MAGNITUDE`. The width is checked before any copy is made."""
    if z.ndim == 2 and not 1 <= z.shape[1] <= MAX_CODE_DIMS:
        raise UserError(
            f"{what} have {z.shape[1]} dimensions per image; dbench scores 1 to "
            f"{MAX_CODE_DIMS:,} (the limit keeps pair metrics' memory bounded)"
        )
    if np.iscomplexobj(z):
        raise UserError(f"{what} are complex numbers; give real codes")
    if z.dtype == bool or not np.issubdtype(z.dtype, np.number):
        raise UserError(f"{what} must be numbers; got dtype {z.dtype}")
    z = np.asarray(z, dtype=np.float64)
    if not np.isfinite(z).all():
        raise UserError(f"{what} hold NaN or infinite values")
    if z.size and np.abs(z).max() > MAX_CODE_MAGNITUDE:
        raise UserError(
            f"{what} reach magnitude {np.abs(z).max():.3g}; dbench scores codes up to "
            f"{MAX_CODE_MAGNITUDE:g} in magnitude (rescale them)"
        )
    return z


def load_codes(path: str | Path, sim: Any) -> tuple[Any, Any, str]:
    """``(encode, sim, fingerprint)`` for the codes in ``path`` on ``sim``'s grid."""
    path = Path(path)
    if not isinstance(sim, FiniteGrid) or sim.has_nuisance:
        raise UserError(
            f"--representations needs a finite grid dataset without nuisance; "
            f"{getattr(sim, 'name', '?')!r} is not one"
        )
    members = _members(path)
    z_member = members["z"]
    z_shape, z_dtype = z_member.shape, z_member.dtype
    if len(z_shape) != 2 or not np.issubdtype(z_dtype, np.number):
        raise UserError(f"{path}: z must be a 2-D numeric array (n, D); got {z_shape} {z_dtype}")
    # widths and sizes are checked on the headers, before a compressed member is inflated
    checked_codes(np.empty((0, z_shape[1]), z_dtype), f"{path}: the codes z")
    if "factors" not in members and z_shape[0] != sim.num_observations:
        raise UserError(
            f"{path}: z has {z_shape[0]} rows but {sim.name!r} has {sim.num_observations:,} "
            "observations; give 'factors' too for a subset"
        )
    if "factors" in members and members["factors"].shape[:1] != z_shape[:1]:
        raise UserError(
            f"{path}: factors must be (n, {len(sim.factor_sizes)}) with one row per row of z; "
            f"got {members['factors'].shape} for z {z_shape}"
        )
    z = checked_codes(z_member.read(), f"{path}: the codes z")
    fingerprint = sha256_file(path)[:16]  # read in pieces: the file may be large
    if "factors" not in members:
        return _full_grid_encode(sim, z), sim, fingerprint
    factors = members["factors"].read()
    if factors.ndim != 2 or factors.shape[1] != len(sim.factor_sizes):
        raise UserError(
            f"{path}: factors must be (n, {len(sim.factor_sizes)}) with one row per row of z; "
            f"got {factors.shape} for z {z.shape}"
        )
    if len(z) < MIN_ROWS:
        raise UserError(f"{path}: {len(z)} rows is too small a subset to score (need {MIN_ROWS})")
    try:
        index = sim.index_of(_grid_labels(factors, path))
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
    index, z = _distinct_rows(index, z, sim, path)
    subset = SubsetGrid(sim, index)
    return _subset_encode(subset, z), subset, fingerprint


def _members(path: Path) -> dict[str, NpzMember]:
    """The archive's arrays by name, headers read, nothing inflated yet (only ``z`` and
    ``factors`` are ever read: other members, however large, are never inflated)."""
    if not path.is_file():
        raise UserError(f"cannot read representations {path}: no such file")
    keys = npz_keys(path)
    if "z" not in keys:
        raise UserError(f"{path} has no array 'z' (found: {', '.join(keys) or 'none'})")
    return {key: NpzMember(path, key) for key in keys if key in ("z", "factors")}


def _grid_labels(factors: np.ndarray, path: Path) -> np.ndarray:
    """Factor labels as integers; complex, fractional or non-numeric labels are refused (a
    cast would silently drop the imaginary part or truncate 2.5 to 2)."""
    if factors.dtype == bool or not np.issubdtype(factors.dtype, np.number):
        raise UserError(f"{path}: factors must be integer grid indices; got dtype {factors.dtype}")
    if np.iscomplexobj(factors):
        raise UserError(f"{path}: factors are complex numbers; give integer grid indices")
    if np.issubdtype(factors.dtype, np.integer):
        return factors.astype(np.int64)
    if not np.isfinite(factors).all() or (factors != np.round(factors)).any():
        bad = factors[~np.isfinite(factors) | (factors != np.round(factors))][0]
        raise UserError(f"{path}: factors must be integer grid indices; found {float(bad):g}")
    if np.abs(factors).max(initial=0) > 2**62:
        raise UserError(f"{path}: factors hold values far outside the grid")
    return factors.astype(np.int64)


def _distinct_rows(
    index: np.ndarray, z: np.ndarray, sim: Any, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """One code per grid point: repeated factor rows must carry the same code (then one is
    kept); rows that repeat a grid point with another code are refused."""
    _, first, inverse = np.unique(index, return_index=True, return_inverse=True)
    if len(first) == len(index):
        return index, z
    differs = (z != z[first][inverse]).any(axis=1)
    if differs.any():
        row = int(np.argmax(differs))
        raise UserError(
            f"{path}: factors {sim.factors_of(index[row : row + 1])[0].tolist()} appear twice "
            "with different codes z; give one code per grid point"
        )
    keep = np.sort(first)
    return index[keep], z[keep]


def _full_grid_encode(sim: Any, z: np.ndarray):
    def encode(obs: Observations) -> np.ndarray:
        return z[sim.index_of(obs.factors)]

    return encode


def _subset_encode(subset: SubsetGrid, z: np.ndarray):
    def encode(obs: Observations) -> np.ndarray:
        rows = subset.row_of(obs.factors)
        if (rows < 0).any():
            missing = obs.factors[np.argmax(rows < 0)].tolist()
            raise UserError(
                f"the representations file has no code for factors {missing}: this metric "
                "builds factor combinations (Higgins, FactorVAE) and needs the full grid; "
                "on a subset use i.i.d. metrics such as mig, sap, dci, modularity"
            )
        return z[rows]

    return encode


class SubsetGrid:
    """``sim`` restricted to some grid points: factors are drawn uniformly from those rows."""

    def __init__(self, sim: Any, index: np.ndarray):
        self._sim = sim
        self._index = np.asarray(index, dtype=np.int64)
        self._row = np.full(sim.num_observations, -1, dtype=np.int64)
        self._row[self._index] = np.arange(len(self._index))
        self.name = sim.name
        self.factor_names = sim.factor_names
        self.factor_sizes = sim.factor_sizes
        self.observation_shape = sim.observation_shape
        self.num_observations = sim.num_observations
        self.has_nuisance = False

    def row_of(self, v: np.ndarray) -> np.ndarray:
        return self._row[self._sim.index_of(v)]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self._sim.factors_of(self._index[rng.integers(0, len(self._index), size=n)])

    def sample_nuisance(self, n: int, rng: np.random.Generator) -> None:
        return None

    def index_of(self, v: np.ndarray) -> np.ndarray:
        return self._sim.index_of(v)

    def factors_of(self, index: np.ndarray) -> np.ndarray:
        return self._sim.factors_of(index)

    def sim(self, v: np.ndarray, w: Any = None) -> Any:
        return self._sim.sim(v, w)

    def describe(self) -> dict[str, Any]:
        return {**self._sim.describe(), "subset_rows": int(len(self._index))}
