"""A tiny ground-truth simulator the model and metric checks use by default.

Ninety-six binary 16x16 images, rendered once into a table of 24 KB: cheap enough that a model
check trains on it in well under a second, with a ``shape`` factor (as dSprites has) so that
metrics which need one can be checked too. Sides divisible by 16 suit the Burgess et al. (2018)
conv net of the VAE family.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from dbench.datasets.base import GridSimulator

if TYPE_CHECKING:  # pragma: no cover
    import torch

RENDERER_VERSION = "tinyshapes-v1"
SIDE = 16


def _patch(shape: int, side: int) -> np.ndarray:
    """A ``side`` x ``side`` mask: 0 a filled square, 1 a plus, 2 a hollow frame."""
    patch = np.zeros((side, side), dtype=np.uint8)
    mid = slice(side // 2 - 1, side // 2 + 1)
    if shape == 0:
        patch[:] = 1
    elif shape == 1:
        patch[mid, :] = 1
        patch[:, mid] = 1
    else:
        patch[[0, -1], :] = 1
        patch[:, [0, -1]] = 1
    return patch


class TinyShapes(GridSimulator):
    """shape (square, plus, frame) x scale (4 or 6 px) x posX (4) x posY (4); binary 1x16x16."""

    name = "tinyshapes"
    factor_names = ("shape", "scale", "posX", "posY")
    factor_sizes = (3, 2, 4, 4)
    observation_shape = (1, SIDE, SIDE)
    has_nuisance = False
    binary = True

    def __init__(self) -> None:
        table = np.zeros((self.num_observations, SIDE, SIDE), dtype=np.uint8)
        for index, (shape, scale, x, y) in enumerate(self.factors_of(np.arange(len(table)))):
            side = 4 + 2 * int(scale)
            table[index, 3 * y : 3 * y + side, 3 * x : 3 * x + side] = _patch(int(shape), side)
        self._table = table
        digest = hashlib.sha256(table.tobytes()).hexdigest()[:16]
        self.checksum = f"{RENDERER_VERSION}:{digest}"

    def sim(self, v: np.ndarray, w: np.ndarray | None = None) -> torch.Tensor:
        import torch

        images = self._table[self.index_of(v)][:, None].astype(np.float32)
        return torch.from_numpy(images)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "source": "procedural", "checksum": self.checksum}


class DSpritesFactors(GridSimulator):
    """dSprites' factor grid (3 x 6 x 40 x 32 x 32) without images, for checking a metric on
    representations computed from the factors themselves (ground truth, rotations, noise):
    rendering is an error here, so a metric that looks at pixels is caught."""

    name = "dsprites_factors"
    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (3, 6, 40, 32, 32)

    def sim(self, v, w=None):
        raise RuntimeError("DSpritesFactors has no images: nothing here may render one")
