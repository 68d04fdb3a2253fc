"""MPI3D (Gondal et al. 2019): a robot arm holding an object, seen by three cameras.

Factors, row-major in the published files' order (vertical_axis fastest): object_color,
object_shape, object_size (2), camera_height (3), background_color (3), horizontal_axis (40),
vertical_axis (40); RGB 64x64. Three datasets share them: ``mpi3d_toy`` (simplistic renders),
``mpi3d_realistic`` (realistic renders) and ``mpi3d_real`` (photographs of the real robot).

Files (``<data root>/NAME.npz`` or ``path=``): ``images`` uint8 (N, 64, 64, 3), nothing else
needed. Two releases exist and the array length says which (:func:`release_of`): the current
one, 6 colours x 6 shapes = 1,036,800 images, and the first, 4 x 4 = 460,800. Either is
12.7 or 5.7 GB of pixels, too much to hold as float: the array stays uint8, memory-mapped in
place when the ``.npz`` member is stored uncompressed (``np.savez``, as published), else
inflated once into memory as uint8, and batches are gathered by row.

Without a file, ``mpi3d_toy`` is rendered procedurally (:mod:`.mpi3d_render`, current release
layout); ``mpi3d_realistic`` and ``mpi3d_real`` have no stand-in and say where the file goes.
``describe()`` records the source, the release and the file's sha256 (or the renderer's id).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dbench.checks import DATA_PATH, Options
from dbench.datasets.files import MissingData, NpzMember, npz_keys, npz_memmap, sha256_file_once
from dbench.datasets.rendered import RenderedGrid
from dbench.errors import UserError

FACTORS = (
    "object_color",
    "object_shape",
    "object_size",
    "camera_height",
    "background_color",
    "horizontal_axis",
    "vertical_axis",
)
#: array length -> (release, factor sizes, colour names, shape names)
RELEASES: dict[int, tuple[str, tuple[int, ...], tuple[str, ...], tuple[str, ...]]] = {
    1_036_800: (
        "6x6 (1,036,800 images)",
        (6, 6, 2, 3, 3, 40, 40),
        ("white", "green", "red", "blue", "brown", "olive"),
        ("cone", "cube", "cylinder", "hexagonal", "pyramid", "sphere"),
    ),
    460_800: (
        "4x4 (460,800 images, the first release)",
        (4, 4, 2, 3, 3, 40, 40),
        ("green", "red", "blue", "brown"),
        ("cone", "cube", "hexagonal prism", "sphere"),
    ),
}
#: images rendered per call of the procedural renderer (bounds its window tensors)
RENDER_CHUNK = 1024


def release_of(n: int, name: str = "mpi3d", path: Any = "") -> tuple[str, tuple[int, ...]]:
    """The release an ``images`` array of length ``n`` belongs to, and its factor sizes; any
    other length is a one-line UserError naming both known lengths."""
    if n not in RELEASES:
        known = " or ".join(f"{k:,} ({v[0].split(' ')[0]})" for k, v in RELEASES.items())
        raise UserError(
            f"{name}: {path} holds {n:,} images; the MPI3D releases have {known} "
            "(a truncated or different file?)"
        )
    label, sizes, _, _ = RELEASES[n]
    return label, sizes


class MPI3D(RenderedGrid):
    """MPI3D from its published ``.npz`` (see the module docstring); ``stand_in`` datasets
    fall back to the procedural renderer without a file."""

    name = "mpi3d_toy"
    factor_names = FACTORS
    factor_sizes = RELEASES[1_036_800][1]
    observation_shape = (3, 64, 64)
    has_nuisance = False
    stand_in = False
    constraints = {"source": Options(("auto", "file")), "path": DATA_PATH}

    def __init__(
        self,
        source: str = "auto",
        path: str | None = None,
        device: str = "cpu",
        data_dir: str | None = None,
    ):
        super().__init__(device=device, data_dir=data_dir, source=source)
        self._images: Any = None  # uint8 (N, 64, 64, 3): a memmap or an array
        self._member: NpzMember | None = None  # a deflated member, inflated on first use
        self._sha256: str | None = None
        default = self.data_dir / f"{self.name}.npz"
        if self._pick_source(source, path, default, stand_in=self.stand_in) == "file":
            self._open()
        else:
            self._setup_renderer()

    # -- the published file ------------------------------------------------------------------
    def _open(self) -> None:
        path = self.path
        if not path.is_file():
            raise MissingData(
                f"{self.name}: no {path}; put the published {self.name}.npz there "
                f"(images uint8 (N, 64, 64, 3)) or pass --set dataset.path=FILE "
                "(datasets/README.md says where to get it)"
            )
        if path.suffix != ".npz":
            raise UserError(f"{self.name}: {path} is not an .npz file (the published format)")
        if "images" not in npz_keys(path):
            raise UserError(f"{self.name}: {path} has no 'images' array")
        member = NpzMember(path, "images")
        n = member.shape[0] if member.shape else 0
        if member.dtype != np.uint8 or tuple(member.shape[1:]) != (64, 64, 3):
            raise UserError(
                f"{self.name}: {path}: 'images' must be uint8 (N, 64, 64, 3), got "
                f"{member.dtype} {tuple(member.shape)}"
            )
        self.release, self.factor_sizes = release_of(n, self.name, path)
        self._images = npz_memmap(path, "images")  # None when deflated
        if self._images is None:
            self._member = member
        self.source = f"file:{path.name}"

    @property
    def checksum(self) -> str:  # type: ignore[override]
        """sha256 of the file (hashed once per process), or the renderer's fingerprint."""
        if self._sha256 is None:
            self._sha256 = f"sha256:{sha256_file_once(self.path)}"
        return self._sha256

    def _rows(self, index: np.ndarray):
        """uint8 rows (n, 64, 64, 3) of the file for grid indices, each distinct row read once
        and in increasing order (sequential pages of the memory map)."""
        import torch

        if self._images is None:  # a deflated member: inflate it once, as uint8
            images = np.empty(self._member.shape, dtype=np.uint8)
            start = 0
            for chunk in self._member.iter_rows(8192):
                images[start : start + len(chunk)] = chunk
                start += len(chunk)
            self._images, self._member = images, None
        uniq, inverse = np.unique(index, return_inverse=True)
        rows = torch.from_numpy(np.ascontiguousarray(self._images[uniq]))
        return rows[torch.from_numpy(inverse.reshape(-1))]

    # -- the procedural stand-in ---------------------------------------------------------------
    def _setup_renderer(self) -> None:
        from dbench.datasets.mpi3d_render import ArmScene, Camera, meshes, static_layers

        self.release = f"{RELEASES[1_036_800][0]}, procedural"
        self.scene = ArmScene()
        self._sha256 = self.scene.fingerprint()
        self._cams = [Camera(e, self.scene, self.device) for e in self.scene.camera_elevations]
        self._layers = [static_layers(c, self.scene) for c in self._cams]
        self._meshes = [m.to(self.device) for m in meshes()]

    def _render(self, v: np.ndarray):
        import torch

        if self.source != "procedural":
            x = self._rows(self.index_of(v)).to(self.device)
            return x.permute(0, 3, 1, 2).float().div(255.0)
        from dbench.datasets.mpi3d_render import render

        vt = torch.as_tensor(v, device=self.device)
        parts = [
            render(vt[s : s + RENDER_CHUNK], self.scene, self._cams, self._layers, self._meshes)
            for s in range(0, len(vt), RENDER_CHUNK)
        ]
        return torch.cat(parts)

    # -- housekeeping ------------------------------------------------------------------------
    def cache_state(self) -> str:
        if self.source == "procedural":
            return "not needed (rendered on demand, about 2 ms an image on one CPU core)"
        memory = "memory-mapped" if self._member is None else "deflated: inflated into memory"
        return f"not needed (reads {self.path.name}, {memory})"

    def prepare(self, progress: bool = True) -> Path:
        raise UserError(f"{self.name} has nothing to prepare: {self.cache_state()}")

    def settings(self) -> dict[str, Any]:
        if self.source == "procedural":
            return asdict(self.scene)
        return {"path": str(self.path)}

    def describe(self) -> dict[str, Any]:
        n = int(np.prod(self.factor_sizes))
        _, _, colours, shapes = RELEASES.get(n, RELEASES[1_036_800])
        return {
            **super().describe(),
            "release": self.release,
            "values": {"object_color": list(colours), "object_shape": list(shapes)},
        }


class MPI3DToy(MPI3D):
    """MPI3D-toy: the simplistic renders, or the procedural stand-in without the file."""

    name = "mpi3d_toy"
    stand_in = True


class MPI3DRealistic(MPI3D):
    """MPI3D-realistic: the realistic renders (file only)."""

    name = "mpi3d_realistic"


class MPI3DReal(MPI3D):
    """MPI3D-real: photographs of the real platform (file only)."""

    name = "mpi3d_real"
