"""3D faces (Higgins et al. 2017; Basel face model renders, Paysan et al. 2009).

Factors, row-major in this order: identity 50 x azimuth 21 x elevation 11 x lighting 11 =
127,050 grey 64x64 images. Two sources behind one name:

- ``file``: the real renders, which are not public, from a user's HDF5 file
  (``<data_root>/faces3d.h5`` or ``path=``): ``images`` uint8 (N, 64, 64), ``labels`` (N, 4)
  (identity, azimuth, elevation, lighting: class indices or angles), rows in grid order.
- ``procedural``: a parametric head sphere-traced in torch (:mod:`.faces3d_render`), with the
  angle ranges documented on :class:`~dbench.datasets.faces3d_render.FaceParams`.
- ``auto`` (default): the file when it exists, else procedural.

``describe()["source"]`` says which produced a score; the checksum is the file's sha256 or the
renderer's fingerprint.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dbench.datasets.base import CompactTable
from dbench.datasets.rendered import RenderedGrid, decode_uint8, read_grid_labels
from dbench.errors import UserError

FILE_NAME = "faces3d.h5"
#: geometries traced per batch: bounds memory (~40 MB of rays per 256 heads)
TRACE_BATCH = 256


class Faces3D(RenderedGrid):
    """Higgins 2017 3D faces: identity, azimuth, elevation, lighting; grey 64x64."""

    name = "faces3d"
    factor_names = ("identity", "azimuth", "elevation", "lighting")
    factor_sizes = (50, 21, 11, 11)
    observation_shape = (1, 64, 64)

    def __init__(
        self,
        source: str = "auto",
        path: str | None = None,
        device: str = "cpu",
        data_dir: str | None = None,
        **render: Any,
    ):
        """``render`` kwargs go to :class:`FaceParams` (angle ranges, grid sizes, seeds)."""
        super().__init__(device=device, data_dir=data_dir, source=source)
        source = self._pick_source(source, path, self.data_dir / FILE_NAME, render)
        self._rows = None
        self._volumes: dict[int, Any] = {}
        if source == "file":
            self._open_file()
        else:
            self._setup_renderer(render)

    def _setup_renderer(self, render: dict[str, Any]) -> None:
        import torch

        from dbench.datasets.faces3d_render import FaceParams, identity_table

        self.params = FaceParams(**render)  # unknown names: TypeError -> UserError in registry
        p = self.params
        self.factor_sizes = (p.n_identities, p.n_azimuth, p.n_elevation, p.n_lighting)
        if min(self.factor_sizes) < 1:
            raise UserError(f"faces3d: every factor needs at least one value: {self.factor_sizes}")
        self.source, self.checksum = "procedural", p.fingerprint()
        table, albedo = identity_table(p)
        self._id_params = torch.from_numpy(table).to(self.device)
        self._id_albedo = torch.from_numpy(albedo).to(self.device)
        f32 = {"dtype": torch.float32, "device": self.device}
        self._angles = [
            torch.as_tensor(p.angles(p.n_azimuth, p.azimuth_deg), **f32),
            torch.as_tensor(p.angles(p.n_elevation, p.elevation_deg), **f32),
            torch.as_tensor(p.angles(p.n_lighting, p.light_deg), **f32),
        ]

    def _open_file(self) -> None:
        from dbench.datasets.files import sha256_file

        self.factor_sizes, self.values = read_grid_labels(
            self.path, self.name, (64, 64), self.factor_names
        )
        self.source = f"file:{self.path.name}"
        self.checksum = f"sha256:{sha256_file(self.path)}"

    def settings(self) -> dict[str, Any]:
        if self.source == "procedural":
            from dataclasses import asdict

            return asdict(self.params)
        return {"path": str(self.path), "values": self.values}

    # -- file source -------------------------------------------------------------------------
    def _file_rows(self):
        """The file's images as (N, 4096) uint8 on the device (520 MB for the real grid)."""
        if self._rows is None:
            import h5py
            import torch

            try:
                with h5py.File(self.path, "r") as f:
                    rows = f["images"][...].reshape(self.num_observations, -1)
            except OSError as exc:  # a damaged chunk is found only when it is read
                raise UserError(f"{self.name}: {self.path}: cannot read 'images' ({exc})") from None
            self._rows = torch.from_numpy(rows).to(self.device)
        return self._rows

    def compact_table(self, device: str = "cpu") -> CompactTable | None:
        if self.source == "procedural":
            return super().compact_table(device)
        return CompactTable(self._file_rows().to(device), decode_uint8(self.observation_shape))

    # -- rendering ---------------------------------------------------------------------------
    def _render(self, v: np.ndarray):
        import torch

        if self.source != "procedural":
            idx = torch.as_tensor(self.index_of(v), device=self.device)
            return decode_uint8(self.observation_shape)(self._file_rows().index_select(0, idx))

        from dbench.datasets.faces3d_render import light_directions, shade

        # Trace each distinct (identity, azimuth, elevation) once, shade it per light.
        geo, inverse = np.unique(v[:, :3], axis=0, return_inverse=True)
        normals = torch.empty((len(geo), 3, 64, 64), device=self.device)
        weight = torch.empty((len(geo), 64, 64), device=self.device)
        for s in range(0, len(geo), TRACE_BATCH):
            normals[s : s + TRACE_BATCH], weight[s : s + TRACE_BATCH] = self._trace(
                geo[s : s + TRACE_BATCH]
            )
        inv = torch.as_tensor(inverse.reshape(-1), device=self.device)
        light = light_directions(
            self._angles[2][torch.as_tensor(v[:, 3], device=self.device)], self.params
        )
        img = shade(
            normals.index_select(0, inv), weight.index_select(0, inv), light, self.params.ambient
        )
        return img[:, None]

    def _trace(self, geo: np.ndarray):
        import torch

        from dbench.datasets.faces3d_render import rotations, sdf_volume, trace_geometry

        ids, tile = np.unique(geo[:, 0], return_inverse=True)
        for i in ids.tolist():
            if i not in self._volumes:  # ~0.25 s per head on a CPU core, kept for reuse
                self._volumes[i] = sdf_volume(self._id_params[i][None])
        # Heads side by side along x: one grid_sample call serves the whole batch.
        volume = torch.cat([self._volumes[i] for i in ids.tolist()], dim=2)[None, None]
        dev = {"device": self.device}
        gid = torch.as_tensor(geo[:, 0], **dev)
        rot = rotations(
            self._angles[0][torch.as_tensor(geo[:, 1], **dev)],
            self._angles[1][torch.as_tensor(geo[:, 2], **dev)],
        )
        return trace_geometry(
            self._id_params[gid],
            self._id_albedo[gid],
            rot,
            torch.as_tensor(tile.reshape(-1), **dev),
            volume,
            self.params,
        )
