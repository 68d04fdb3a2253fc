"""3dshapes (Burgess & Kim 2018): floor_hue 10, wall_hue 10, object_hue 10,
scale 8, shape 4, orientation 15 = 480,000 RGB 64x64 images, last factor fastest.

Sources (``source="auto"|"procedural"|"file"``): the real ``3dshapes.h5`` in the data root
(datasets ``images`` uint8 (N, 64, 64, 3), ``labels`` float64 (N, 6)) when present, else the
procedural scene of :mod:`.shapes3d_render`.

Memory: the real file is 5.9 GB as a uint8 table, too much to keep on a device, so with the
file ``compact_table`` returns None (training then reads batches through ``sim``) unless the
file is small. The procedural source stores the dataset at far lower cost: colour is linear in
the three hues, so the table is the observation index (N int32 = 1.9 MB) plus per-geometry
colour weights (480 x 3 x 64 x 64 float32 = 24 MB), and ``decode`` composes images on the
device exactly as ``sim`` does. Tracing the 480 geometries takes minutes on a CPU:
``dbench data prepare shapes3d`` traces them once into a verified cache
(``<data root>/cache/shapes3d-weights-<fingerprint>.h5``) that later instances load instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dbench.datasets.base import CompactTable
from dbench.datasets.cache import VerifiedCache
from dbench.datasets.rendered import MAX_TABLE_BYTES, RenderedGrid, decode_uint8, read_grid_labels
from dbench.errors import UserError

FILE_NAME = "3dshapes.h5"
TRACE_BATCH = 32  # geometries per trace call (16,384 supersampled rays each)
N_GEOMETRIES = 480  # scale 8 x shape 4 x orientation 15


class Shapes3D(RenderedGrid):
    """3dshapes: hues of floor, wall and object, scale, shape, orientation; RGB 64x64."""

    name = "shapes3d"
    factor_names = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    factor_sizes = (10, 10, 10, 8, 4, 15)
    observation_shape = (3, 64, 64)

    def __init__(
        self,
        source: str = "auto",
        path: str | None = None,
        device: str = "cpu",
        data_dir: str | None = None,
        **scene: Any,
    ):
        """``scene`` kwargs go to :class:`SceneParams` (camera, light, supersampling)."""
        super().__init__(device=device, data_dir=data_dir, source=source)
        default = self.data_dir / FILE_NAME
        source = self._pick_source(source, path, default, scene, what="scene settings")
        if source == "file":
            from dbench.datasets.files import sha256_file

            self.factor_sizes, self.values = read_grid_labels(
                self.path, self.name, (64, 64, 3), self.factor_names
            )
            self.source = f"file:{self.path.name}"
            self.checksum = f"sha256:{sha256_file(self.path)}"
        else:
            import torch

            from dbench.datasets.shapes3d_render import SceneParams

            self.scene = SceneParams(**scene)
            self.checksum = self.scene.fingerprint()
            self._weights = torch.empty((N_GEOMETRIES, 3, 64, 64), device=self.device)
            self._traced = torch.zeros(N_GEOMETRIES, dtype=torch.bool)
            self._cache_tried = False

    def settings(self) -> dict[str, Any]:
        if self.source == "procedural":
            from dataclasses import asdict

            return asdict(self.scene)
        return {"path": str(self.path), "values": self.values}

    # -- the colour-weights cache -----------------------------------------------------------
    def cache_path(self) -> Path:
        """The procedural source's cache: its traced colour weights (24 MB)."""
        tag = str(self.checksum).replace(":", "-")
        return self.data_dir / "cache" / f"{self.name}-weights-{tag}.h5"

    def _cache(self) -> VerifiedCache:
        shape = (N_GEOMETRIES, 3, 64, 64)
        expect = {"checksum": str(self.checksum)}
        return VerifiedCache(
            self.cache_path(), self.name, "weights", shape, "float32", None, expect
        )

    def cache_state(self) -> str:
        if self.source == "procedural" and not self._cache().exists():
            return (
                "absent (24 MB of colour weights, traced on first use; "
                "dbench data prepare shapes3d traces them once)"
            )
        return super().cache_state()

    def prepare(self, progress: bool = True) -> Path:
        """Trace all 480 geometries' colour weights once into the cache (over any old file,
        corrupt or not, which is never read); later instances load them instead."""
        from dbench.progress import progress_bar

        if self.source != "procedural":
            raise UserError(f"{self.name} reads {self.source}; there is nothing to prepare")
        with progress_bar("tracing shapes3d", N_GEOMETRIES, enabled=progress) as bar:
            for s in range(0, N_GEOMETRIES, TRACE_BATCH):
                self._trace(np.arange(s, min(s + TRACE_BATCH, N_GEOMETRIES)))
                bar.advance(min(TRACE_BATCH, N_GEOMETRIES - s))
        cache = self._cache()
        with cache.write(geometry="scale * 60 + shape * 15 + orientation") as out:
            out.write(self._weights.cpu().numpy())
        return cache.path

    # -- procedural --------------------------------------------------------------------------
    def weights(self, geo: np.ndarray):
        """(m, 3, 64, 64) colour weights of geometry indices (scale*60 + shape*15 + orient):
        from the prepared cache (verified) when there is one, else traced; kept on the device
        for the instance's lifetime."""
        import torch

        if not self._cache_tried:  # a corrupt cache stays an error on every call
            cache = self._cache()
            if cache.exists():
                self._weights.copy_(torch.from_numpy(cache.read()))
                self._traced[:] = True
            self._cache_tried = True
        self._trace(geo)
        return self._weights[torch.as_tensor(geo, device=self.device)]

    def _trace(self, geo: np.ndarray) -> None:
        """Trace the geometries of ``geo`` not traced yet into ``self._weights``."""
        import torch

        from dbench.datasets.shapes3d_render import ORIENTATIONS, SCALES, trace_weights

        todo = np.unique(geo[~self._traced[torch.from_numpy(geo)].numpy()])
        for s in range(0, len(todo), TRACE_BATCH):
            g = torch.as_tensor(todo[s : s + TRACE_BATCH], device=self.device)
            scale = torch.tensor(SCALES, device=self.device)[g // 60]
            orient = torch.tensor(ORIENTATIONS, device=self.device)[g % 15]
            self._weights[g] = trace_weights((g // 15) % 4, scale, orient, self.scene)
            self._traced[g.cpu()] = True

    def _compose(self, index, weights):
        """Images of observation indices (a device tensor): hues from the index, weights from
        the geometry table. Both ``sim`` and the compact table's ``decode`` use it, so the two
        agree bit for bit."""
        import torch

        from dbench.datasets.rendered import quantise
        from dbench.datasets.shapes3d_render import compose

        strides = torch.tensor([48_000, 4_800, 480], device=index.device)
        hues = (index[:, None] // strides) % 10
        return quantise(compose(weights[index % 480], hues, self.scene))

    def _render(self, v: np.ndarray):
        import torch

        index = self.index_of(v)
        if self.source != "procedural":
            return self._read_file(index)
        self.weights(index % 480)
        return self._compose(torch.as_tensor(index, device=self.device), self._weights)

    def compact_table(self, device: str = "cpu") -> CompactTable | None:
        import torch

        if self.source != "procedural":
            if self.num_observations * self.row_bytes > MAX_TABLE_BYTES:
                return None  # the real file: 5.9 GB; batches come through sim instead
            rows = self._read_file(np.arange(self.num_observations)).mul(255).round()
            rows = rows.to(torch.uint8).reshape(self.num_observations, -1)
            return CompactTable(rows.to(device), decode_uint8(self.observation_shape))
        weights = self.weights(np.arange(480)).to(device)
        index = torch.arange(self.num_observations, dtype=torch.int32, device=device)
        return CompactTable(index, lambda rows: self._compose(rows.long(), weights))

    # -- file --------------------------------------------------------------------------------
    def _read_file(self, index: np.ndarray):
        """Rows of the real file, read in increasing index order (what h5py needs), each
        distinct image once."""
        import h5py
        import torch

        uniq, inverse = np.unique(index, return_inverse=True)
        try:
            with h5py.File(self.path, "r") as f:
                x = f["images"][uniq]
        except OSError as exc:  # a damaged chunk is found only when its rows are read
            raise UserError(f"{self.name}: {self.path}: cannot read 'images' ({exc})") from None
        x = torch.from_numpy(x).to(self.device)[torch.as_tensor(inverse.reshape(-1))]
        return x.permute(0, 3, 1, 2).float().div(255.0)
