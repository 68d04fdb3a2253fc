"""dSprites (Matthey et al. 2017) as a ground-truth simulator, from any of three sources.

Matthey et al. 2017: 737,280 binary 64x64 images over shape (3) x scale (6) x orientation (40) x
posX (32) x posY (32), grid index ``245760*shape + 40960*scale + 1024*orientation +
32*posX + posY`` (posY fastest). The colour factor of the files has one value and is dropped.

Sources, chosen by ``source=``:

* ``file``: the public ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` or ``.hdf5`` in
  the data root, for users who have it;
* ``cache``: ``<data root>/cache/dsprites-procedural-v1.h5``, the procedural renderer's
  output written once by :meth:`DSprites.prepare` (``dbench data prepare dsprites``), a
  :class:`~dbench.datasets.cache.VerifiedCache` checked against its sha256 when opened;
* ``procedural``: :mod:`dbench.datasets.dsprites_render`, no download needed;
* ``auto`` (default): file, else cache, else procedural; the first full procedural render
  writes the cache, so only the first run on a machine renders.

Every source ends in one table of packed bits (512 bytes per image, 377 MB), from which
``sim`` gathers; the procedural source renders on demand until that table is built.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dbench.checks import NONNEGATIVE_INT, Maybe, Options, check_declared
from dbench.datasets.base import CompactTable, GridSimulator
from dbench.datasets.cache import HASH_ATTR, VerifiedCache
from dbench.datasets.dsprites_render import RENDERER_VERSION, SpriteParams, grid_blocks, render
from dbench.datasets.files import (
    BitDecoder,
    NpzMember,
    h5_dataset,
    iter_h5_rows,
    npz_keys,
    pack_rows,
    sha256_file,
)
from dbench.errors import UserError
from dbench.paths import data_root

FILE_STEM = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64"
CACHE_NAME = "dsprites-procedural-v1.h5"
SOURCES = ("auto", "procedural", "file", "cache")
N_IMAGES = 737_280
ROW_BYTES = 64 * 64 // 8
#: images unpacked per read step: 8192 x 4096 B = 32 MB of uint8 beside the packed table
READ_ROWS = 8192
_PREPARE_HINT = "`dbench data prepare dsprites` rebuilds it"


class DSprites(GridSimulator):
    """dSprites: shape, scale, orientation, posX, posY (Matthey et al. 2017); no nuisance."""

    name = "dsprites"
    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (3, 6, 40, 32, 32)
    observation_shape = (1, 64, 64)
    has_nuisance = False
    binary = True  # pixels are 0 or 1: VAEs use a Bernoulli decoder
    constraints = {"source": Options(SOURCES), "table_after": Maybe(NONNEGATIVE_INT)}

    def __init__(
        self,
        data_dir: str | Path | None = None,
        source: str = "auto",
        device: str = "cpu",
        table_after: int | None = 8192,
    ):
        self.data_dir = data_root(data_dir)
        self.device = device  # where procedural rendering runs
        # Rendering one random image costs a whole fine mask (~10 ms on a CPU core), while the
        # full table costs ~1 min once; past ``table_after`` rendered images, build the table
        # and gather from then on (None: never build it implicitly).
        self.table_after = table_after
        self._rendered = 0
        self.params = SpriteParams()
        self.decode = BitDecoder(self.observation_shape)
        self._packed: Any = None  # CPU torch uint8 (737280, 512), grid order, once built
        self._on_device: dict[str, Any] = {}
        self._checksum: str | None = None
        check_declared(self.constraints, {"source": source, "table_after": table_after}, self.name)
        self.requested_source = source
        self.source, self.path = self._resolve(self.requested_source)

    # -- where the images come from -----------------------------------------------------------
    @property
    def cache_path(self) -> Path:
        return self.data_dir / "cache" / CACHE_NAME

    @property
    def _cache(self) -> VerifiedCache:
        shape = (self.num_observations, ROW_BYTES)
        return VerifiedCache(self.cache_path, self.name, "packed", shape)

    def _cache_renderer(self) -> str | None:
        """The renderer fingerprint stored in the cache; None when its header is unreadable
        (then the cache is corrupt: every use says so, and :meth:`prepare` rebuilds it)."""
        try:
            return str(self._cache.header().get("renderer"))
        except UserError:
            return None

    def _resolve(self, source: str) -> tuple[str, Path | None]:
        files = [self.data_dir / f"{FILE_STEM}{ext}" for ext in (".npz", ".hdf5")]
        real = next((f for f in files if f.is_file()), None)
        if source == "file" or (source == "auto" and real is not None):
            if real is None:
                raise UserError(
                    f"dsprites: no real dSprites file in {self.data_dir}: put {FILE_STEM}.npz "
                    "(or .hdf5) there, or use source=procedural"
                )
            return "file", real
        if source in ("cache", "auto") and self.cache_path.is_file():
            fingerprint = self._cache_renderer()
            if fingerprint in (None, self.params.fingerprint()):
                return "cache", self.cache_path  # if corrupt, the first use says so
            if source == "cache":
                raise UserError(
                    f"dsprites: cache {self.cache_path} was made by renderer {fingerprint}, not "
                    f"{self.params.fingerprint()}; {_PREPARE_HINT}"
                )
            warnings.warn(f"ignoring stale dSprites cache {self.cache_path}", stacklevel=3)
        elif source == "cache":
            raise UserError(
                f"dsprites: no prepared cache at {self.cache_path}; run `dbench data prepare "
                "dsprites`"
            )
        return "procedural", None

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(
            source=self.source,
            path=str(self.path) if self.path else None,
            checksum=self.checksum,
            renderer_version=None if self.source == "file" else RENDERER_VERSION,
        )
        return info

    @property
    def checksum(self) -> str:
        """sha256 of the real file; the cache's stored sha256 of its packed images (verified
        first: a corrupt cache is a UserError); for procedural images the renderer's
        version-and-parameters id."""
        if self._checksum is None:
            if self.source == "file":
                self._checksum = sha256_file(self.path)
            elif self.source == "cache":
                self._checksum = str(self._cache.verify()[HASH_ATTR])
            else:
                self._checksum = self.params.fingerprint()
        return self._checksum

    # -- images --------------------------------------------------------------------------------
    def sim(self, v: np.ndarray, w: np.ndarray | None = None, device: str | None = None):
        """(n, 1, 64, 64) float32 images in {0, 1} for factor indices v (n, 5).

        Gathers from the packed table when there is one (file and cache sources load it on
        first use, since per-batch reads of an HDF5 file are slow: NOTES.md); procedural images
        are rendered until ``table_after`` of them were asked for, then the table is built.
        ``device`` (default: where the images were made, the CPU for tables) moves the result.
        """
        import torch

        index = self.index_of(v)
        if self._packed is None and (
            self.source != "procedural"
            or (self.table_after is not None and self._rendered + len(index) > self.table_after)
        ):
            self._load()
        if self._packed is not None:
            rows = self._packed.index_select(0, torch.from_numpy(index))
            images = self.decode(rows)
        else:
            self._rendered += len(index)
            images = render(self.factors_of(index), self.params, self.device)
            images = images.unsqueeze(1).to(torch.float32)
        return images.to(device) if device is not None else images

    def compact_table(self, device: str = "cpu", progress: bool = True) -> CompactTable:
        """All 737,280 images as packed bits on ``device`` (rendered once if procedural)."""
        import torch

        if self._packed is None:
            self._load(progress=progress, render_device=device)
        key = str(torch.device(device))
        if key not in self._on_device:
            self._on_device[key] = self._packed.to(device)
        return CompactTable(self._on_device[key], self.decode)

    def _load(self, progress: bool = True, render_device: str | None = None) -> None:
        import torch

        if self.source == "file" and self.path.suffix == ".npz":
            packed = self._read_npz(self.path)
        elif self.source == "file":
            packed = self._read_hdf5(self.path)
        elif self.source == "cache":
            packed = self._cache.read()
        else:
            packed = self._render_all(progress, render_device or self.device)
            self._cache_rendered(packed)
        self._packed = torch.from_numpy(packed)

    def _cache_rendered(self, packed: np.ndarray) -> None:
        """With ``source="auto"``, the first full render also writes the verified cache (about
        2 s on top of a ~50-s render), so later runs load it instead of rendering again. The
        run that rendered keeps ``source="procedural"`` (that is how it made its images).
        An unwritable data root costs only the speed-up: one line says so."""
        import sys

        if self.requested_source != "auto" or self.cache_path.is_file():
            return  # asked to render (not to cache), or a stale/corrupt cache: prepare decides
        try:
            self._write_cache(packed)
        except OSError as exc:
            print(f"dsprites: could not cache the rendered images ({exc})", file=sys.stderr)
            return
        print(
            f"dsprites: rendered all {self.num_observations:,} images once and cached them in "
            f"{self.cache_path}; later runs load them from there",
            file=sys.stderr,
        )

    def _write_cache(self, packed: np.ndarray) -> None:
        with self._cache.write(
            renderer=self.params.fingerprint(),
            renderer_version=RENDERER_VERSION,
            bit_order="np.packbits (first pixel in the most significant bit)",
            factor_sizes=np.asarray(self.factor_sizes),
        ) as out:
            out.write(packed)

    def _render_all(self, progress: bool, device: str) -> np.ndarray:
        from dbench.progress import progress_bar

        packed = np.empty((N_IMAGES, ROW_BYTES), dtype=np.uint8)
        with progress_bar("rendering dSprites", N_IMAGES, enabled=progress) as bar:
            for first, images in grid_blocks(self.params, device):
                packed[first : first + len(images)] = pack_rows(images).cpu().numpy()
                bar.advance(len(images))
        return packed

    # -- the prepared cache --------------------------------------------------------------------
    def prepare(self, progress: bool = True) -> Path:
        """Render every image once and write the procedural cache atomically; returns its path.

        Later runs (``source="cache"``, or ``"auto"`` when no real file is present) load it in
        seconds instead of rendering. Neither a real file nor the old cache is read here, so a
        corrupt cache is simply replaced; temporary files of killed earlier prepares go too.
        """
        if self.source == "procedural" and self._packed is not None:
            packed = self._packed.numpy()
        else:
            packed = self._render_all(progress, self.device)
        self._write_cache(packed)
        if self.source == "cache":
            self._checksum = None  # the new file's, verified on next use
        return self.cache_path

    def cache_state(self) -> str:
        """``ready: PATH``, ``absent (...)``, ``stale: ...`` or ``corrupt: ...`` (the payload is
        hashed once per process), or ``not needed`` when a real file is read."""
        if self.source == "file":
            return f"not needed (reads {self.path.name})"
        fingerprint = self._cache_renderer() if self._cache.exists() else None
        if fingerprint not in (None, self.params.fingerprint()):
            return f"stale: {self.cache_path} was made by renderer {fingerprint}; {_PREPARE_HINT}"
        return self._cache.state()

    # -- the real files ------------------------------------------------------------------------
    def _grid_index(self, classes: np.ndarray, path: Path) -> np.ndarray:
        """Grid index of each file row from its ``latents_classes`` (colour, then our 5
        factors); the rows must cover the grid exactly once."""
        if not np.issubdtype(classes.dtype, np.integer):
            raise UserError(f"{path}: latents classes are {classes.dtype}, expected integers")
        sizes = np.asarray((1, *self.factor_sizes))
        if (classes < 0).any() or (classes >= sizes).any():
            raise UserError(f"{path}: latents classes fall outside the {sizes.tolist()} grid")
        index = classes[:, 1:].astype(np.int64) @ self.strides
        if not (np.bincount(index, minlength=self.num_observations) == 1).all():
            raise UserError(f"{path}: latents classes do not cover the dSprites grid exactly once")
        return index

    def _check_shapes(self, path: Path, imgs: tuple, dtype: np.dtype, classes: tuple, values):
        n = self.num_observations
        expected = ((n, 64, 64), (n, 6), (n, 6))
        if (tuple(imgs), tuple(classes), tuple(values)) != expected or dtype != np.uint8:
            raise UserError(
                f"{path}: expected imgs uint8 {expected[0]} and latents {expected[1]}, got imgs "
                f"{dtype} {tuple(imgs)}, classes {tuple(classes)}, values {tuple(values)}"
            )

    def _fill(self, chunks, index: np.ndarray) -> np.ndarray:
        """Pack image chunks into grid order as they arrive (no unpacked copy of the set)."""
        packed = np.empty((self.num_observations, ROW_BYTES), dtype=np.uint8)
        in_order = bool((index == np.arange(self.num_observations)).all())
        start = 0
        for chunk in chunks:
            rows = pack_rows(chunk)
            if in_order:
                packed[start : start + len(rows)] = rows
            else:
                packed[index[start : start + len(rows)]] = rows
            start += len(rows)
        return packed

    def _read_npz(self, path: Path) -> np.ndarray:
        # np.load would inflate all 2.9 GB of ``imgs`` at once; NpzMember inflates the zip
        # stream chunk by chunk instead. ``metadata`` (a pickle) is never opened.
        missing = {"imgs", "latents_classes", "latents_values"} - set(npz_keys(path))
        if missing:
            raise UserError(f"{path}: missing arrays {', '.join(sorted(missing))}")
        imgs, classes, values = (
            NpzMember(path, k) for k in ("imgs", "latents_classes", "latents_values")
        )
        self._check_shapes(path, imgs.shape, imgs.dtype, classes.shape, values.shape)
        try:  # the labels are small: numpy's own reader, never allowed to unpickle
            with np.load(path, allow_pickle=False) as npz:
                labels = npz["latents_classes"]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise UserError(f"{path}: latents_classes is unreadable ({exc})") from None
        index = self._grid_index(labels, path)
        return self._fill(imgs.iter_rows(READ_ROWS), index)

    def _read_hdf5(self, path: Path) -> np.ndarray:
        import h5py

        try:
            with h5py.File(path, "r") as fh:
                for key in ("imgs", "latents/classes", "latents/values"):
                    if h5_dataset(fh, key, path) is None:
                        raise UserError(f"{path}: no dataset {key!r} in this HDF5 file")
                imgs = fh["imgs"]
                self._check_shapes(
                    path,
                    imgs.shape,
                    imgs.dtype,
                    fh["latents/classes"].shape,
                    fh["latents/values"].shape,
                )
                index = self._grid_index(fh["latents/classes"][...], path)
                return self._fill(iter_h5_rows(imgs, READ_ROWS), index)
        except OSError as exc:
            raise UserError(f"{path}: not a readable HDF5 file ({exc})") from None
