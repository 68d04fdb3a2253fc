"""Synthetic Gaussian blobs (Burgess et al. 2018, Fig. 1).

One bright 2-D Gaussian blob on a black 64x64 grey image; the generative factors are its x and
y position on a grid. The paper gives neither the blob width nor the number of positions
(the paper does not state them); our defaults, both keyword arguments:

- ``grid=32`` positions per axis, like dSprites' 32 positions, so the two datasets' position
  factors are directly comparable;
- centres span the whole frame, ``linspace(0, 64, grid)`` px (pixel i spans [i, i+1)), so
  blobs at the edge are clipped by the frame, as the paper's figure allows;
- ``sigma=3.0`` px: wide enough that neighbouring positions (2 px apart) overlap, which is
  what makes position learnable by a VAE (Burgess et al.'s point about overlap), narrow enough
  that a blob is a clear spot;
- peak intensity 1 (not a normalised density), so images use the full [0, 1] range.

The factors are ``posX`` (columns, 0 = left) and ``posY`` (rows, 0 = top); row-major grid
order with posY fastest, as dSprites.
"""

from __future__ import annotations

import hashlib
import json
from numbers import Real
from typing import Any

import numpy as np

from dbench.datasets.rendered import RenderedGrid
from dbench.errors import UserError

RENDERER_VERSION = "blobs-gauss-v1"
SIZE = 64
#: blob widths in pixels: narrower, a blob between pixel centres renders (almost) blank;
#: wider than the frame, every position renders (almost) the same grey image
SIGMA_RANGE = (0.25, float(SIZE))
#: positions per axis: the grid has MAX_GRID**2 images (grid-indexed tables stay bounded)
MAX_GRID = 1024


class Blobs(RenderedGrid):
    """One Gaussian blob; factors posX, posY (Burgess et al. 2018)."""

    name = "blobs"
    factor_names = ("posX", "posY")
    observation_shape = (1, SIZE, SIZE)

    def __init__(
        self, grid: int = 32, sigma: float = 3.0, device: str = "cpu", data_dir: str | None = None
    ):
        if isinstance(grid, bool) or not isinstance(grid, Real) or int(grid) != grid:
            raise UserError(f"blobs: grid must be an integer in 2..{MAX_GRID}, got {grid!r}")
        if not 2 <= grid <= MAX_GRID:
            raise UserError(f"blobs: grid must be an integer in 2..{MAX_GRID}, got {grid!r}")
        low, high = SIGMA_RANGE
        if isinstance(sigma, bool) or not isinstance(sigma, Real) or not sigma > 0:
            raise UserError(f"blobs: sigma must be > 0 pixels, got {sigma!r}")
        if not low <= sigma <= high:  # 1e-300 renders blank images, 1e300 identical ones
            raise UserError(
                f"blobs: sigma must be {low:g}..{high:g} pixels (narrower renders blank images, "
                f"wider the same image everywhere); got {sigma!r}"
            )
        super().__init__(device=device, data_dir=data_dir)
        self.grid = int(grid)
        self.sigma = float(sigma)
        self.factor_sizes = (self.grid, self.grid)
        text = json.dumps({"version": RENDERER_VERSION, **self.settings()}, sort_keys=True)
        self.checksum = f"{RENDERER_VERSION}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def settings(self) -> dict[str, Any]:
        return {"grid": self.grid, "sigma": self.sigma, "centres_px": [0.0, float(SIZE)]}

    def _render(self, v: np.ndarray):
        import torch

        vt = torch.as_tensor(v, device=self.device)
        centre = vt.float() * (SIZE / (self.grid - 1))  # (n, 2): x, y in pixels
        u = torch.arange(SIZE, device=self.device, dtype=torch.float32) + 0.5
        # Separable: exp(-(dx^2 + dy^2) / 2s^2) = gy(row) * gx(col).
        gx = torch.exp(-((u[None, :] - centre[:, :1]) ** 2) / (2 * self.sigma**2))
        gy = torch.exp(-((u[None, :] - centre[:, 1:]) ** 2) / (2 * self.sigma**2))
        return (gy[:, :, None] * gx[:, None, :])[:, None]
