"""Cars3D (Reed et al. 2015, "Deep Visual Analogy-Making"), as disentanglement studies use it.

183 car models rendered at 4 elevations x 24 azimuths, 128x128 RGB, one MATLAB file per model
whose ``im`` array is (128, 128, 3, 24 azimuths, 4 elevations) uint8. As disentanglement_lib
does, the images are resized to 64x64 (PIL's Lanczos filter) and the factors are elevation (4),
azimuth (24) and the model (183), row-major in that order; no nuisance.

Files: the published ``car_*_mesh.mat`` renders (folder ``data/cars`` of Reed et al.'s
archive) in ``<data root>/cars/`` (or ``path=FOLDER``); models are numbered in sorted file-name
order. Each file's array shape and the number of files are checked (one-line errors); no
stand-in exists. The images are read on first use: 17,568 x 12,288 bytes = 216 MB as uint8,
small enough for the training loop to keep on its device (``compact_table``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from dbench.checks import DATA_PATH, check_declared
from dbench.datasets.base import CompactTable, GridSimulator
from dbench.datasets.files import MissingData, resize_lanczos, sha256_file_once
from dbench.datasets.rendered import decode_uint8
from dbench.errors import UserError
from dbench.paths import data_root

FOLDER = "cars"
#: models in the published set (tests write fewer files and change this)
N_MODELS = 183
MESH_SHAPE = (128, 128, 3, 24, 4)  # height, width, channel, azimuth, elevation


def read_mesh(path: Path) -> np.ndarray:
    """One model's renders as uint8 (4 elevations, 24 azimuths, 128, 128, 3); a file that is
    not the published layout is a one-line UserError naming it."""
    import scipy.io

    try:
        im = scipy.io.loadmat(path, variable_names=["im"]).get("im")
    except (ValueError, OSError, NotImplementedError, TypeError) as exc:
        raise UserError(f"cars3d: {path} is not a readable MATLAB file ({exc})") from None
    if im is None or im.dtype != np.uint8 or im.shape != MESH_SHAPE:
        got = "no 'im' array" if im is None else f"'im' {im.dtype} {im.shape}"
        raise UserError(f"cars3d: {path}: expected 'im' uint8 {MESH_SHAPE}, got {got}")
    return np.ascontiguousarray(im.transpose(4, 3, 0, 1, 2))


class Cars3D(GridSimulator):
    """Cars3D: elevation, azimuth, model; RGB 64x64, no nuisance."""

    name = "cars3d"
    factor_names = ("elevation", "azimuth", "model")
    factor_sizes = (4, 24, N_MODELS)
    observation_shape = (3, 64, 64)
    has_nuisance = False
    binary = False

    #: the folder of the published files (None: under the data root)
    constraints = {"path": DATA_PATH}

    def __init__(self, path: str | None = None, device: str = "cpu", data_dir: str | None = None):
        check_declared(self.constraints, {"path": path}, self.name)
        self.folder = Path(path) if path else data_root(data_dir) / FOLDER
        self.device = device
        self.files = sorted(self.folder.glob("*.mat")) if self.folder.is_dir() else []
        if not self.files:
            raise MissingData(
                f"cars3d: no .mat files in {self.folder}; put the {N_MODELS} published renders "
                "there (car_001_mesh.mat ... from Reed et al.'s data/cars; see datasets/README.md)"
            )
        if len(self.files) != N_MODELS:
            raise UserError(
                f"cars3d: {self.folder} holds {len(self.files)} .mat files; the published set "
                f"has {N_MODELS} (car_001_mesh.mat ...), one per model"
            )
        self.factor_sizes = (4, 24, len(self.files))
        self._table: Any = None
        self._on_device: dict[str, Any] = {}
        self._checksum: str | None = None

    def _load(self) -> Any:
        """uint8 (N, 64*64*3) in grid order (elevation, azimuth, model; model fastest)."""
        import torch

        if self._table is None:
            m = len(self.files)
            table = np.empty((4, 24, m, 64 * 64 * 3), dtype=np.uint8)
            for k, path in enumerate(self.files):
                mesh = read_mesh(path).reshape(96, 128, 128, 3)
                table[:, :, k] = resize_lanczos(mesh).transpose(0, 3, 1, 2).reshape(4, 24, -1)
            self._table = torch.from_numpy(table.reshape(4 * 24 * m, -1))  # rows: (C, H, W)
        return self._table

    def sim(self, v: np.ndarray, w: np.ndarray | None = None):
        """(n, 3, 64, 64) float32 images in [0, 1] (``w`` is ignored: there is no nuisance)."""
        import torch

        rows = self._load().index_select(0, torch.from_numpy(self.index_of(v)))
        return decode_uint8(self.observation_shape)(rows).to(self.device)

    def compact_table(self, device: str = "cpu") -> CompactTable:
        """The whole set as uint8 rows on ``device`` (216 MB), decoded like :meth:`sim`."""
        import torch

        key = str(torch.device(device))
        if key not in self._on_device:
            self._on_device[key] = self._load().to(device)
        return CompactTable(self._on_device[key], decode_uint8(self.observation_shape))

    @property
    def checksum(self) -> str:
        """sha256 over the files' names and sha256 digests, in model order."""
        if self._checksum is None:
            text = "".join(f"{p.name}:{sha256_file_once(p)}\n" for p in self.files)
            self._checksum = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        return self._checksum

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "source": f"file:{FOLDER}/ ({len(self.files)} files)",
            "checksum": self.checksum,
            "path": str(self.folder),
            "preprocessing": "128x128 -> 64x64, PIL Lanczos; models in sorted file-name order",
            "binary": False,
        }
