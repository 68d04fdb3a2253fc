"""Labelled datasets that are not a full grid, built from arrays: ``arrays``.

``dbench run --dataset arrays --set dataset.path=FILE`` reads an ``.npz`` or ``.h5`` file with
``images`` ((N, H, W), (N, H, W, C) or (N, C, H, W), C = 1 or 3; uint8 0..255, uint8 or bool
0/1, or floats in [0, 1]), ``factors`` ((N,) or (N, K) numbers) and optionally
``factor_names`` (K strings); :func:`from_arrays` does the same from Python arrays.

Factors become class indices, which every metric can use:

* a **discrete** factor (integers or booleans, or at most ``bins`` distinct values) keeps its
  distinct values as classes;
* a **continuous** factor (more distinct floats) is cut into ``bins`` (default 20) bins:
  equal-frequency (``binning="quantile"``, default) or equal-width (``"uniform"``); empty
  bins are dropped. ``describe()["factors"]`` lists each factor's values or bin edges.

``sample_factors`` draws rows uniformly and returns their classes: factors follow their
empirical (joint) distribution, not a uniform grid. ``sim(v, w)`` returns, for each factor
vector, a row with exactly those classes when there is one (the nuisance w in [0, 1) picks
among them), else the row :class:`~dbench.datasets.arrays_match.RowMatcher` chooses for a
drawn row with one factor held at another row's value (what the Higgins and FactorVAE
samplers ask for): "fix factor k" means rows sharing factor k's value, the other factors as
close to the drawn ones as the data allow. That holds exactly whenever the held vector exists
or only one factor can have been replaced; when several can, the row shares all but the
least likely one (measured on blob images with 3 factors: every held pair shares k when the
rows fill the factor combinations, 91-97 % with 800-3000 rows over 512-1728 combinations,
68-84 % with 500 rows over 8000). :meth:`ArraysDataset.sample_sharing` draws rows sharing a
value exactly, for a sampler that asks for it instead. A full grid loaded this way is the
grid dataset itself.

The dataset declares no finite grid, so metrics encode what they sample. Data no metric can
use is refused in one line: a factor with a single value, or a value shared by fewer than
``min_rows`` rows (default 2: fixing that factor would always show the same image).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from dbench.checks import DATA_PATH, POSITIVE_INT, Options, check_declared
from dbench.datasets.arrays_match import RowMatcher
from dbench.datasets.arrays_pairs import PairDrawer
from dbench.datasets.files import (
    MissingData,
    NpzMember,
    check_fits_in_memory,
    h5_dataset,
    npz_keys,
    npz_memmap,
    sha256_array,
    sha256_file,
)
from dbench.errors import UserError
from dbench.paths import data_root

BINNINGS = ("quantile", "uniform")
_HINT = (
    "arrays: needs a file: --set dataset.path=FILE (.npz or .h5 holding 'images' and "
    "'factors', optionally 'factor_names'); in Python: dbench.datasets.arrays.from_arrays("
    "images, factors, names=...)"
)


def from_arrays(
    images: Any,
    factors: Any,
    names: Any = None,
    *,
    bins: int = 20,
    binning: str = "quantile",
    min_rows: int = 2,
    device: str = "cpu",
) -> ArraysDataset:
    """A dataset from in-memory arrays (layouts and settings as for ``dataset.path``); numpy
    arrays, torch tensors or nested lists of equal-length rows."""
    data = ArraysDataset.__new__(ArraysDataset)
    images, factors = _as_array(images, "images"), _as_array(factors, "factors")
    names = _names(names)
    data._setup(images, factors, names, bins, binning, min_rows, device)  # checks them all
    digest = hashlib.sha256()
    for a in (images, factors):
        digest.update(str((a.dtype.str, a.shape)).encode())
        digest.update(sha256_array(a).encode())
    digest.update(repr(names).encode())
    data.source, data.checksum = "arrays", f"sha256:{digest.hexdigest()}"
    return data


def _as_array(value: Any, what: str) -> np.ndarray:
    """``value`` as a numpy array: a torch tensor is detached and copied to the CPU; a ragged
    list (rows of different lengths) or anything else numpy cannot hold is one line."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        value = value.float() if str(value.dtype) == "torch.bfloat16" else value
        return value.numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise UserError(
            f"arrays: {what} must be one array (rows of equal shape); got {type(value).__name__}"
            f" ({first})"
        ) from None


def _names(names: Any) -> list[str] | None:
    if names is None:
        return None
    try:
        if isinstance(names, (str, bytes)):
            raise TypeError
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    except TypeError:  # 5, "ab", a 0-d array
        raise UserError(f"arrays: names must be a list of factor names; got {names!r}") from None


class ArraysDataset:
    """Images with factor labels that need not fill a grid (see the module docstring)."""

    name = "arrays"
    has_nuisance = True
    constraints = {"bins": POSITIVE_INT, "binning": Options(BINNINGS), "min_rows": POSITIVE_INT,
                   "path": DATA_PATH}  # fmt: skip

    def __init__(
        self,
        path: str | None = None,
        bins: int = 20,
        binning: str = "quantile",
        min_rows: int = 2,
        device: str = "cpu",
        data_dir: str | None = None,
    ):
        # checked before the file is looked for or read (it may be large)
        settings = {"bins": bins, "binning": binning, "min_rows": min_rows}
        check_declared(self.constraints, {**settings, "path": path}, self.name)
        if not path:
            raise MissingData(_HINT)
        file = Path(path)
        if not file.is_file() and (data_root(data_dir) / path).is_file():
            file = data_root(data_dir) / path
        if not file.is_file():
            raise MissingData(f"arrays: no file at {path} ({_HINT.partition(': ')[2]})")
        images, factors, names = read_arrays(file)
        self._setup(images, factors, names, bins, binning, min_rows, device)
        self.path = file
        self.source, self.checksum = f"file:{file.name}", f"sha256:{sha256_file(file)}"

    # -- construction --------------------------------------------------------------------------
    def _setup(self, images, factors, names, bins, binning, min_rows, device) -> None:
        settings = {"bins": bins, "binning": binning, "min_rows": min_rows}
        vars(self).update(check_declared(self.constraints, settings, self.name))
        self.device = device
        self._images, self._layout, self._scale, self.binary = _image_layout(images)
        n = len(self._images)
        self.observation_shape = _shape(self._images.shape, self._layout)
        factors = np.asarray(factors)
        factors = factors[:, None] if factors.ndim == 1 else factors
        if factors.ndim != 2 or len(factors) != n or factors.shape[1] == 0:
            raise UserError(f"arrays: factors must be (N={n}, K) numbers; got {factors.shape}")
        if factors.dtype.kind not in "biuf":  # complex, dates, strings, objects
            raise UserError(f"arrays: factors must be real numbers; got dtype {factors.dtype}")
        if factors.dtype.kind == "f" and not np.isfinite(factors).all():
            raise UserError("arrays: factors hold NaN or infinite values")
        k = factors.shape[1]
        names = [f"factor_{i}" for i in range(k)] if names is None else _names(names)
        if len(names) != k or len(set(names)) != k:
            raise UserError(f"arrays: need {k} distinct factor names; got {names}")
        self.factor_names = tuple(names)
        codes, sizes, self.factor_info = [], [], []
        for i in range(k):
            code, info = discretise(factors[:, i], self.bins, self.binning)
            codes.append(code)
            sizes.append(int(code.max()) + 1)
            self.factor_info.append({"name": names[i], **info})
        self.factor_sizes = tuple(sizes)
        self.codes = np.stack(codes, 1)
        self._check_usable()
        self.matcher = RowMatcher(self.codes, self.factor_sizes)
        self._pairs = PairDrawer(self.codes, self.matcher.strides, self.factor_names)
        self.has_nuisance = bool(self.matcher.cells < n)  # a factor vector with several rows

    def _check_usable(self) -> None:
        for i, name in enumerate(self.factor_names):
            counts = np.bincount(self.codes[:, i])
            if len(counts) < 2:
                raise UserError(
                    f"arrays: factor {name!r} takes a single value; no metric can use it (drop it)"
                )
            if counts.min() < self.min_rows:
                value = int(np.argmin(counts))
                raise UserError(
                    f"arrays: value {value} of factor {name!r} is shared by {counts.min()} "
                    f"row(s); holding a factor fixed (higgins, factorvae) needs at least "
                    f"{self.min_rows}: use fewer bins (--set dataset.bins=N), drop the factor, "
                    "or set dataset.min_rows=1"
                )

    # -- the simulator -------------------------------------------------------------------------
    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Classes of ``n`` rows drawn uniformly (the factors' empirical distribution)."""
        return self.codes[rng.integers(0, len(self.codes), size=n)].copy()

    def sample_sharing(
        self, factor: np.ndarray, values: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Classes of rows drawn uniformly among those whose factor ``factor[i]`` has class
        ``values[i]``: exact "fix factor k" sampling, for a metric that asks for it (every
        vector returned exists, so ``sim`` answers it with a row that shares the value)."""
        factor, values = np.asarray(factor, dtype=np.int64), np.asarray(values, dtype=np.int64)
        rows = np.empty(len(factor), dtype=np.int64)
        u = rng.random(len(factor))
        for k in np.unique(factor):
            i = np.flatnonzero(factor == k)
            order, starts = self.matcher.value_index(int(k))
            count = starts[values[i] + 1] - starts[values[i]]
            rows[i] = order[starts[values[i]] + np.floor(u[i] * count).astype(np.int64)]
        return self.codes[rows].copy()

    def sample_pairs(
        self, n: int, k: int | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pairs of rows' factor classes differing in exactly k factors, both real rows
        (weak supervision; :class:`~dbench.datasets.arrays_pairs.PairDrawer`)."""
        first, second = self._pairs.draw(n, k, rng)
        return self.codes[first].copy(), self.codes[second].copy()

    def sample_nuisance(self, n: int, rng: np.random.Generator) -> np.ndarray | None:
        """u in [0, 1) per image, choosing among the rows that answer its factor vector."""
        return rng.random(n) if self.has_nuisance else None

    def rows_for(self, v: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        """The row answering each factor vector (see the module docstring)."""
        v = np.asarray(v)
        if v.ndim != 2 or v.shape[1] != len(self.factor_sizes):
            raise ValueError(f"arrays: factors must have shape (n, {len(self.factor_sizes)})")
        v = v.astype(np.int64, copy=False)
        if v.size and ((v < 0).any() or (v >= np.asarray(self.factor_sizes)).any()):
            raise ValueError(f"arrays: factor index out of range {self.factor_sizes}")
        u = np.zeros(len(v)) if w is None else np.asarray(w, dtype=np.float64).reshape(-1)
        if len(u) != len(v) or (u < 0).any() or (u >= 1).any():
            raise UserError(f"arrays: nuisance must be {len(v)} numbers in [0, 1)")
        return self.matcher.rows(v, u)

    def sim(self, v: np.ndarray, w: np.ndarray | None = None):
        """(n, C, H, W) float32 images in [0, 1] of the rows answering v (and w)."""
        import torch

        rows = self.rows_for(v, w)
        uniq, inverse = np.unique(rows, return_inverse=True)
        x = torch.from_numpy(np.ascontiguousarray(self._images[uniq]))
        x = x[torch.from_numpy(inverse.reshape(-1))].to(self.device).float()
        if self._layout == "nhw":
            x = x.unsqueeze(1)
        elif self._layout == "nhwc":
            x = x.permute(0, 3, 1, 2)
        return (x * self._scale).contiguous() if self._scale != 1.0 else x.contiguous()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "checksum": self.checksum,
            "factor_names": list(self.factor_names),
            "factor_sizes": list(self.factor_sizes),
            "observation_shape": list(self.observation_shape),
            "rows": len(self.codes),
            "distinct_factor_vectors": self.matcher.cells,
            "factors": self.factor_info,
            "settings": {"bins": self.bins, "binning": self.binning, "min_rows": self.min_rows},
            "sampling": "rows drawn uniformly; missing factor vectors answered by RowMatcher",
            "binary": self.binary,
        }


def discretise(column: np.ndarray, bins: int, binning: str) -> tuple[np.ndarray, dict]:
    """Class indices of one factor column and what they stand for (see the module docstring)."""
    values, codes = np.unique(column, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    if column.dtype.kind in "biu" or len(values) <= bins:
        shown = [v.item() for v in values[:100]]
        return codes, {"kind": "discrete", "classes": len(values), "values": shown}
    x = column.astype(np.float64)
    if binning == "quantile":
        edges = np.quantile(x, np.linspace(0, 1, bins + 1))
    else:
        edges = np.linspace(x.min(), x.max(), bins + 1)
    bin_of = np.clip(np.searchsorted(edges[1:-1], x, side="right"), 0, bins - 1)
    used, codes = np.unique(bin_of, return_inverse=True)
    lows, highs = edges[used], edges[used + 1]
    info = {
        "kind": "continuous",
        "binning": binning,
        "classes": len(used),
        "edges": [float(lows[0]), *(float(e) for e in highs)],
    }
    return codes.reshape(-1).astype(np.int64), info


def _image_layout(images: Any) -> tuple[Any, str, float, bool]:
    """The image array (kept as given: uint8 stays uint8, memory maps stay mapped), its
    layout, the factor turning its values into [0, 1], and whether pixels are 0/1."""
    if not hasattr(images, "shape") or not hasattr(images, "dtype"):
        images = np.asarray(images)
    shape, kind = tuple(images.shape), np.dtype(images.dtype).kind
    if len(shape) == 3:
        layout = "nhw"
    elif len(shape) == 4 and shape[3] in (1, 3):
        layout = "nhwc"
    elif len(shape) == 4 and shape[1] in (1, 3):
        layout = "nchw"
    else:
        raise UserError(
            f"arrays: images must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3; "
            f"got {shape}"
        )
    if len(images) < 2:
        raise UserError("arrays: need at least two images")
    if 0 in shape:
        raise UserError(f"arrays: images of shape {shape} hold no pixels")
    if kind == "b":
        return images, layout, 1.0, True
    lo, hi = _range(images)
    if kind == "f" and (np.isnan(lo) or np.isnan(hi)):
        raise UserError("arrays: images hold NaN values")
    if kind in "iu":
        if lo < 0 or hi > 255:
            raise UserError(f"arrays: integer images must be 0..255; got {lo}..{hi}")
        binary = bool(hi <= 1)
        return images, layout, 1.0 if binary else 1 / 255, binary
    if kind == "f" and np.isfinite(lo) and np.isfinite(hi) and lo >= 0 and hi <= 1:
        return images, layout, 1.0, False
    raise UserError(
        f"arrays: images must be uint8, bool or floats in [0, 1]; got {images.dtype} "
        f"values {lo}..{hi}"
    )


def _range(images: Any, rows: int = 4096) -> tuple[float, float]:
    """Min and max over the images, read in row blocks (memory maps stay cheap)."""
    lo, hi = np.inf, -np.inf
    for s in range(0, len(images), rows):
        block = np.asarray(images[s : s + rows])
        low, high = block.min(), block.max()  # NaN if any pixel is NaN
        if low != low or high != high:
            return np.nan, np.nan
        lo, hi = min(lo, low), max(hi, high)
    return lo, hi


def _shape(shape: tuple[int, ...], layout: str) -> tuple[int, int, int]:
    if layout == "nhw":
        return (1, shape[1], shape[2])
    if layout == "nhwc":
        return (shape[3], shape[1], shape[2])
    return (shape[1], shape[2], shape[3])


def read_arrays(path: Path) -> tuple[Any, np.ndarray, Any]:
    """``images``, ``factors`` and ``factor_names`` (or None) from an .npz or HDF5 file; the
    images of an uncompressed .npz stay memory-mapped."""
    if path.suffix == ".npz":
        keys = set(npz_keys(path))
        missing = {"images", "factors"} - keys
        if missing:
            raise UserError(f"arrays: {path} has no {' or '.join(sorted(missing))} array")
        # every member through its header first: sizes are checked before anything inflates,
        # object arrays are refused, and each member's CRC-32 is verified
        images = npz_memmap(path, "images")
        if images is None:  # deflated: it has to be inflated into memory
            images = NpzMember(path, "images").read()
        names = NpzMember(path, "factor_names").read() if "factor_names" in keys else None
        return images, NpzMember(path, "factors").read(), names
    if path.suffix in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                for key in ("images", "factors"):
                    if h5_dataset(f, key, f"arrays: {path}") is None:
                        raise UserError(f"arrays: {path} has no '{key}' dataset")
                names = f["factor_names"][...] if "factor_names" in f else None
                if names is not None:
                    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
                check_fits_in_memory(f["images"].nbytes, f"arrays: {path}: 'images'")
                return f["images"][...], f["factors"][...], names
        except OSError as exc:
            raise UserError(f"arrays: {path} is not a readable HDF5 file ({exc})") from None
    raise UserError(f"arrays: {path} must be an .npz or .h5 file")
