"""SmallNORB (LeCun et al. 2004) as disentanglement studies use it (Locatello et al. 2019).

Photographs of 50 toys: category (5) x instance (10) x elevation (9) x azimuth (18) x
lighting (6) = 48,600 stereo pairs of 96x96 grey images, split by instance into a training
and a testing set of 24,300 rows each. As disentanglement_lib does, both sets are joined, the
first camera's image is kept and resized to 64x64 (PIL's Lanczos filter), the factors are
category, elevation, azimuth and lighting, and the instance is the nuisance w: ``sim(v, w)``
shows toy ``w`` of category ``v[0]`` (``sim(v)`` without w: a fixed instance per v).

Files: the six published binary matrices, unzipped, in ``<data root>/smallnorb/`` (or
``path=FOLDER``), named as published (:data:`FILES`). Their sizes are fixed by the format, so a
truncated or different file is a one-line error before anything is read; no stand-in exists
(they are photographs). The images are read and resized on first use (about 200 MB as uint8).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from dbench.checks import DATA_PATH, check_declared
from dbench.datasets.base import GridSimulator
from dbench.datasets.files import MissingData, resize_lanczos, sha256_file_once
from dbench.errors import UserError
from dbench.paths import data_root

FOLDER = "smallnorb"
SPLITS = ("5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing")
FILES = tuple(f"smallnorb-{s}-{kind}.mat" for s in SPLITS for kind in ("dat", "cat", "info"))
#: rows per published file (tests write smaller files and change this)
ROWS = 24_300
#: magic number of each matrix kind, its dtype and its dimensions after the row count
_KINDS = {
    "dat": (0x1E3D4C55, np.uint8, (2, 96, 96)),
    "cat": (0x1E3D4C54, np.int32, ()),
    "info": (0x1E3D4C54, np.int32, (4,)),
}


def expected_bytes(kind: str, rows: int) -> int:
    """The size of a published matrix file: magic, ndim, max(3, ndim) dimensions, data."""
    _, dtype, dims = _KINDS[kind]
    ndim = 1 + len(dims)
    data = rows * int(np.prod(dims, dtype=np.int64)) * np.dtype(dtype).itemsize
    return 8 + 4 * max(3, ndim) + data


def read_matrix(path: Path, kind: str, rows: int) -> np.ndarray:
    """A NORB binary matrix, memory-mapped after its header is checked; wrong sizes, magic
    numbers or dimensions are one-line UserErrors naming the file."""
    magic, dtype, dims = _KINDS[kind]
    want = expected_bytes(kind, rows)
    size = path.stat().st_size
    if size != want:
        raise UserError(
            f"smallnorb: {path} is {size:,} bytes; the published file is {want:,} "
            "(truncated, still gzipped, or a different file?)"
        )
    header = np.fromfile(path, dtype="<i4", count=2 + max(3, 1 + len(dims)))
    shape = (rows, *dims)
    if int(header[0]) != magic or int(header[1]) != len(shape):
        raise UserError(f"smallnorb: {path} does not start like a NORB {kind} matrix")
    if tuple(int(d) for d in header[2 : 2 + len(shape)]) != shape:
        raise UserError(f"smallnorb: {path} holds a {tuple(header[2:])} matrix, not {shape}")
    return np.memmap(
        path,
        dtype=dtype,
        mode="r",
        offset=want - int(np.prod(shape)) * np.dtype(dtype).itemsize,
        shape=shape,
    )


class SmallNORB(GridSimulator):
    """SmallNORB: category, elevation, azimuth, lighting; the instance is the nuisance."""

    name = "smallnorb"
    factor_names = ("category", "elevation", "azimuth", "lighting")
    factor_sizes = (5, 9, 18, 6)
    observation_shape = (1, 64, 64)
    has_nuisance = True
    binary = False

    #: the folder of the published files (None: under the data root)
    constraints = {"path": DATA_PATH}

    def __init__(self, path: str | None = None, device: str = "cpu", data_dir: str | None = None):
        check_declared(self.constraints, {"path": path}, self.name)
        self.folder = Path(path) if path else data_root(data_dir) / FOLDER
        self.device = device
        missing = [f for f in FILES if not (self.folder / f).is_file()]
        if missing:
            raise MissingData(
                f"smallnorb: missing {len(missing)} of its 6 files in {self.folder}: put the "
                f"published {', '.join(missing)} there, unzipped (see datasets/README.md)"
            )
        labels = []
        for split in SPLITS:
            cat = read_matrix(self.folder / f"smallnorb-{split}-cat.mat", "cat", ROWS)
            info = read_matrix(self.folder / f"smallnorb-{split}-info.mat", "info", ROWS)
            # columns: category, instance, elevation, azimuth (0, 2, ..., 34), lighting
            labels.append(np.column_stack([cat, info]).astype(np.int64))
            read_matrix(self.folder / f"smallnorb-{split}-dat.mat", "dat", ROWS)  # size check
        self._order, sizes = _grid_order(np.concatenate(labels), self.folder)
        self.factor_sizes = (sizes[0], sizes[2], sizes[3], sizes[4])
        self.n_instances = sizes[1]
        self._table: Any = None  # uint8 (cells * instances, 64 * 64) once read
        self._checksum: str | None = None

    # -- images --------------------------------------------------------------------------------
    def _load(self) -> Any:
        """Every image, camera 0, resized to 64x64, in (factors..., instance) row-major order."""
        import torch

        if self._table is None:
            parts = []
            for split in SPLITS:
                dat = read_matrix(self.folder / f"smallnorb-{split}-dat.mat", "dat", ROWS)
                for s in range(0, ROWS, 2048):
                    parts.append(resize_lanczos(np.asarray(dat[s : s + 2048, 0])))
            images = np.concatenate(parts).reshape(2 * ROWS, -1)
            table = np.empty_like(images)
            table[self._order] = images
            self._table = torch.from_numpy(table)
        return self._table

    def sample_nuisance(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The instance shown (an index into the category's instances), (n,) int64."""
        return rng.integers(0, self.n_instances, size=n, dtype=np.int64)

    def sim(self, v: np.ndarray, w: np.ndarray | None = None):
        """(n, 1, 64, 64) float32 images; ``w`` picks each image's instance (None: a fixed
        instance per factor vector)."""
        import torch

        index = self.index_of(v)
        if w is None:
            w = index % self.n_instances
        w = np.asarray(w)
        if w.shape != index.shape or not np.issubdtype(w.dtype, np.integer):
            raise UserError(f"smallnorb: nuisance must be ({len(index)},) instance indices")
        if len(w) and (w.min() < 0 or w.max() >= self.n_instances):
            raise UserError(f"smallnorb: instance index out of range 0..{self.n_instances - 1}")
        rows = torch.from_numpy(index * self.n_instances + w.astype(np.int64))
        x = self._load().index_select(0, rows).view(len(rows), *self.observation_shape)
        return x.to(self.device).float().div_(255.0)

    def compact_table(self, device: str = "cpu") -> None:
        return None  # the instance changes the image: batches come from sim

    # -- provenance ------------------------------------------------------------------------------
    @property
    def checksum(self) -> str:
        """sha256 over the six files' sha256 digests, in :data:`FILES` order."""
        if self._checksum is None:
            digests = [sha256_file_once(self.folder / f) for f in FILES]
            self._checksum = "sha256:" + hashlib.sha256("".join(digests).encode()).hexdigest()
        return self._checksum

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "source": f"file:{FOLDER}/ ({len(FILES)} files)",
            "checksum": self.checksum,
            "path": str(self.folder),
            "nuisance": f"instance ({self.n_instances} per category), (n,) int",
            "preprocessing": "camera 0 of each stereo pair, 96x96 -> 64x64, PIL Lanczos",
            "binary": False,
        }


def _grid_order(labels: np.ndarray, folder: Path) -> tuple[np.ndarray, tuple[int, ...]]:
    """Row of the (category, elevation, azimuth, lighting, instance) table for each file row,
    and the sizes of (category, instance, elevation, azimuth, lighting); the rows must cover
    that grid exactly once."""
    classes = np.empty_like(labels)
    sizes = []
    for k in range(labels.shape[1]):
        values, classes[:, k] = np.unique(labels[:, k], return_inverse=True)
        sizes.append(len(values))
    cat, inst, elev, azim, light = classes.T
    _, n_inst, n_elev, n_azim, n_light = sizes
    cell = ((cat * n_elev + elev) * n_azim + azim) * n_light + light
    order = cell * n_inst + inst
    if len(order) != int(np.prod(sizes)) or (np.bincount(order, minlength=len(order)) != 1).any():
        raise UserError(
            f"smallnorb: the labels in {folder} do not cover category x instance x elevation x "
            f"azimuth x lighting {tuple(sizes)} exactly once"
        )
    return order, tuple(sizes)
