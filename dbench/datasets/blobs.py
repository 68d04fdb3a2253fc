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

from dbench.checks import AllOf, Rule, check_declared
from dbench.datasets.rendered import RenderedGrid

RENDERER_VERSION = "blobs-gauss-v1"
SIZE = 64
#: blob widths in pixels: narrower, a blob between pixel centres renders (almost) blank;
#: wider than the frame, every position renders (almost) the same grey image
SIGMA_RANGE = (0.25, float(SIZE))
#: positions per axis: the grid has MAX_GRID**2 images (grid-indexed tables stay bounded)
MAX_GRID = 1024


def _real(x: Any) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


#: whole numbers (32.0 too, as before) in 2..MAX_GRID
GRID = Rule(
    lambda g: _real(g) and int(g) == g and 2 <= g <= MAX_GRID,
    f"an integer in 2..{MAX_GRID}",
    bad=("32", True, 1, 2.5, MAX_GRID + 1, float("nan")),
)
SIGMA = AllOf(
    (
        Rule(lambda s: _real(s) and s > 0, "> 0 pixels", bad=("3", True, 0, -1.0)),
        # 1e-300 renders blank images, 1e300 identical ones
        Rule(
            lambda s: SIGMA_RANGE[0] <= s <= SIGMA_RANGE[1],
            f"{SIGMA_RANGE[0]:g}..{SIGMA_RANGE[1]:g} pixels (narrower renders blank images, "
            "wider the same image everywhere)",
            bad=(0.1, 1e300),
        ),
    )
)


class Blobs(RenderedGrid):
    """One Gaussian blob; factors posX, posY (Burgess et al. 2018)."""

    name = "blobs"
    factor_names = ("posX", "posY")
    observation_shape = (1, SIZE, SIZE)
    constraints = {"grid": GRID, "sigma": SIGMA}

    def __init__(
        self, grid: int = 32, sigma: float = 3.0, device: str = "cpu", data_dir: str | None = None
    ):
        check_declared(self.constraints, {"grid": grid, "sigma": sigma}, self.name)
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
