"""Shared machinery of the grey/RGB grid datasets (blobs, 3D faces, 3dshapes).

Each of them has a procedural renderer (no download) and some also a real-file loader. What
they share lives here: the device the renderer runs on, uint8 quantisation, ``describe()``,
the uint8 :class:`~dbench.datasets.base.CompactTable`, and the HDF5 cache that
``prepare()`` fills under ``<data_root>/cache/`` so later runs skip rendering (a
:class:`~dbench.datasets.cache.VerifiedCache`: its content checksum is checked when opened).

Procedural images are quantised to the 256 levels of a uint8 (``round(255 x) / 255``) before
``sim`` returns them, so ``sim(v)`` equals the decoded table row of ``v`` exactly, whichever
path (render, cache, table) served it, and the real uint8 files are on the same footing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dbench.checks import DATA_PATH, Options, check_declared
from dbench.datasets.base import CompactTable, GridSimulator
from dbench.datasets.cache import VerifiedCache
from dbench.datasets.files import h5_dataset
from dbench.errors import UserError
from dbench.paths import data_root

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: observations per rendering block when filling a table or cache
BLOCK = 2048
#: tables larger than this are not built (3dshapes' real file is 5.9 GB as uint8)
MAX_TABLE_BYTES = 2 * 1024**3


def quantise(x: torch.Tensor) -> torch.Tensor:
    """Round float images in [0, 1] to uint8 levels (still float32)."""
    return x.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def decode_uint8(shape: tuple[int, int, int]):
    """Decoder of uint8 table rows (m, C*H*W) to float images (m, C, H, W) in [0, 1]."""

    def decode(rows: torch.Tensor) -> torch.Tensor:
        return rows.view(len(rows), *shape).float().div_(255.0)

    return decode


class RenderedGrid(GridSimulator):
    """A grid dataset with grey or RGB images (``binary = False``: the VAE models use a
    Gaussian decoder) rendered in torch on ``device``.

    Subclasses set ``source`` and ``checksum`` in ``__init__`` and implement
    :meth:`_render` (float images for factor indices, on ``self.device``).
    """

    binary = False
    source: str = "procedural"
    checksum: str | None = None

    #: where the images come from: rendered here, or the real files (``_pick_source``)
    constraints = {"source": Options(("auto", "procedural", "file")), "path": DATA_PATH}

    def __init__(self, device: str = "cpu", data_dir: str | None = None, source: str = "auto"):
        """``source`` is checked against the subclass's declared constraints first."""
        import torch

        check_declared(self.constraints, {"source": source}, self.name)

        try:
            self.device = torch.device(device)
            torch.empty(0, device=self.device)
        except (RuntimeError, ValueError) as exc:
            raise UserError(f"{self.name}: device {device!r} is not usable here: {exc}") from None
        self.data_dir = data_root(data_dir)

    def _pick_source(
        self,
        source: str,
        path: str | None,
        default_path: Path,
        render: dict[str, Any] | None = None,
        *,
        what: str = "renderer settings",
        stand_in: bool = True,
    ) -> str:
        """The ``source`` setting (``auto``, ``procedural`` or ``file``, already checked) as
        ``"file"`` or ``"procedural"``, with ``self.path`` set to ``path`` or ``default_path``.

        ``auto`` reads the file when it exists and renders otherwise; with a ``path`` named, or
        without a ``stand_in`` renderer, it always reads (a missing file is then the loader's
        one-line error: a file the user names is never replaced by the stand-in).
        Renderer settings (``render``, called ``what`` in the message) given with a file are a
        one-line UserError: the file would silently ignore them.
        """
        check_declared(self.constraints, {"path": path}, self.name)
        if path and source == "procedural":
            raise UserError(f"{self.name}: path names a file, but source=procedural renders")
        self.path = Path(path) if path else default_path
        if source == "auto":
            source = "file" if path or self.path.is_file() or not stand_in else "procedural"
        if source == "file" and render:
            raise UserError(f"{self.name}: {what} {sorted(render)} need source=procedural")
        return source

    # -- rendering ---------------------------------------------------------------------------
    def _render(self, v: np.ndarray) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def sim(self, v: np.ndarray, w: np.ndarray | None = None) -> torch.Tensor:
        """(n, C, H, W) float32 images in [0, 1] on ``self.device`` (``w`` is ignored)."""
        v = self.check_factors(v)
        if len(v) == 0:
            import torch

            return torch.zeros((0, *self.observation_shape), device=self.device)
        return quantise(self._render(v))

    def blocks(self, block: int = BLOCK) -> Iterator[tuple[int, torch.Tensor]]:
        """The whole grid in index order as uint8 rows: yields (first index, (m, C*H*W))."""
        for start in range(0, self.num_observations, block):
            index = np.arange(start, min(start + block, self.num_observations))
            x = self.sim(self.factors_of(index))
            yield start, x.mul(255.0).round().to(dtype=_uint8()).reshape(len(index), -1)

    # -- table and cache ---------------------------------------------------------------------
    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.observation_shape))

    def cache_path(self) -> Path:
        """Where :meth:`prepare` writes the rendered grid: one file per renderer fingerprint."""
        tag = (self.checksum or "none").replace(":", "-")
        return self.data_dir / "cache" / f"{self.name}-{tag}.h5"

    def _cache(self) -> VerifiedCache:
        n, row = self.num_observations, self.row_bytes
        expect = {"checksum": str(self.checksum)}
        return VerifiedCache(
            self.cache_path(),
            self.name,
            "images",
            (n, row),
            "uint8",
            chunks=(max(min(n, 256), 1), row),
            expect=expect,
        )

    def cache_state(self) -> str:
        """``ready: PATH``, ``absent (...)`` or ``corrupt: ...`` (the images are hashed once
        per process); ``not needed`` for real files."""
        if self.source != "procedural":
            return f"not needed (reads {self.source})"
        return self._cache().state()

    def compact_table(self, device: str = "cpu") -> CompactTable | None:
        """Every observation as uint8 rows (N, C*H*W), from the cache when prepared, else
        rendered now on ``device`` (faces: 520 MB, ~11,550 head traces). None above
        ``MAX_TABLE_BYTES``."""
        import torch

        if self.num_observations * self.row_bytes > MAX_TABLE_BYTES:
            return None
        data = self._read_cache()
        if data is None:
            data = torch.empty(
                (self.num_observations, self.row_bytes), dtype=torch.uint8, device=device
            )
            for start, rows in self.blocks():
                data[start : start + len(rows)] = rows.to(device)
        return CompactTable(data.to(device), decode_uint8(self.observation_shape))

    def _read_cache(self) -> torch.Tensor | None:
        """The prepared images, verified (a corrupt cache is a one-line UserError); None
        when there is no cache."""
        import torch

        cache = self._cache()
        if self.source != "procedural" or not cache.exists():
            return None
        return torch.from_numpy(cache.read())

    def prepare(self, progress: bool = True) -> Path:
        """Render the whole grid once into ``<data_root>/cache/`` (uint8 rows, HDF5), over
        any old file, corrupt or not, which is never read."""
        from dbench.progress import progress_bar

        if self.source != "procedural":
            raise UserError(f"{self.name} reads {self.source}; there is nothing to prepare")
        cache = self._cache()
        n = self.num_observations
        attrs = {"factor_names": list(self.factor_names), "factor_sizes": list(self.factor_sizes)}
        with cache.write(**attrs) as out:
            with progress_bar(f"rendering {self.name}", n, enabled=progress) as bar:
                for _, rows in self.blocks():
                    out.write(rows.cpu().numpy())
                    bar.advance(len(rows))
        return cache.path

    # -- provenance --------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """Renderer or file settings recorded in ``describe()`` (subclasses extend)."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "source": self.source,
            "checksum": self.checksum,
            "binary": self.binary,
            "settings": self.settings(),
        }


def _uint8():
    import torch

    return torch.uint8


def read_grid_labels(
    path: Path, name: str, image_shape: tuple[int, ...], factor_names: tuple[str, ...]
) -> tuple[tuple[int, ...], list[list[float]]]:
    """Validate a real-renders HDF5 file; return its factor sizes and each factor's values.

    Layout (datasets/README.md): ``images`` uint8 (N, *image_shape) and ``labels`` (N, K) with
    one column per factor (class indices or values), rows in row-major grid order (last factor
    fastest). Every problem is one-line :class:`UserError` naming the file.
    """
    import h5py

    if not path.is_file():
        raise UserError(f"{name}: no file at {path} (see datasets/README.md for the layout)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{name}: {path} is not a readable HDF5 file ({exc})") from None
    with f:
        for key in ("images", "labels"):
            if h5_dataset(f, key, f"{name}: {path}") is None:  # missing, a group, a dangling link
                raise UserError(f"{name}: {path} has no '{key}' dataset (see datasets/README.md)")
        images, labels = f["images"], f["labels"]
        n = images.shape[0]
        if images.dtype != np.uint8 or tuple(images.shape[1:]) != tuple(image_shape):
            raise UserError(
                f"{name}: {path}: 'images' must be uint8 (N, {', '.join(map(str, image_shape))}),"
                f" got {images.dtype} {images.shape}"
            )
        if labels.shape != (n, len(factor_names)):
            raise UserError(
                f"{name}: {path}: 'labels' must be (N={n}, {len(factor_names)}) "
                f"({', '.join(factor_names)}), got {labels.shape}"
            )
        if labels.dtype.kind not in "biuf":
            raise UserError(f"{name}: {path}: 'labels' must be real numbers; got {labels.dtype}")
        try:
            lab = labels[...]
        except OSError as exc:  # a corrupt chunk
            raise UserError(f"{name}: {path}: cannot read 'labels' ({exc})") from None
    if not np.isfinite(lab).all():
        raise UserError(f"{name}: {path}: 'labels' hold NaN or infinite values")
    values, classes = [], np.empty(lab.shape, dtype=np.int64)
    for k in range(lab.shape[1]):
        vals, classes[:, k] = np.unique(lab[:, k], return_inverse=True)
        values.append([float(x) for x in vals])
    sizes = tuple(len(vals) for vals in values)
    if n != int(np.prod(sizes)) or n == 0:
        raise UserError(f"{name}: {path}: {n} images do not fill the label grid {sizes}")
    if 1 in sizes:  # no metric can score a factor that never changes (it would write NaN)
        constant = factor_names[sizes.index(1)]
        raise UserError(f"{name}: {path}: factor {constant!r} takes a single value")
    strides = np.concatenate([np.cumprod(np.asarray(sizes)[::-1])[::-1][1:], [1]])
    expected = (np.arange(n)[:, None] // strides) % np.asarray(sizes)
    if not np.array_equal(classes, expected):
        raise UserError(f"{name}: {path}: rows are not in row-major order of {factor_names}")
    return sizes, values
