"""Tiny grid simulators for the training-loop and VAE tests (stand-ins for dSprites). The
metric tests' dSprites factor grid without images is ``dbench.testing.toy.DSpritesFactors``."""

from __future__ import annotations

import numpy as np
import torch

from dbench.datasets.base import CompactTable, GridSimulator


class ToySquares(GridSimulator):
    """A binary square (3 sizes) at 8 x 8 positions, ``size`` x ``size`` px; packed-bit table."""

    name = "toy_squares"
    factor_names = ("scale", "posX", "posY")
    factor_sizes = (3, 8, 8)
    binary = True

    def __init__(self, size: int = 32):
        self.observation_shape = (1, size, size)
        self.size = size

    def _render_numpy(self, v: np.ndarray) -> np.ndarray:
        v = self.check_factors(v)
        s = self.size
        out = np.zeros((len(v), 1, s, s), dtype=np.uint8)
        side = s // 8 + 2 * v[:, 0]
        step = (s - (s // 8 + 2 * (self.factor_sizes[0] - 1))) // 7  # the grid's largest side
        for i, (_, px, py) in enumerate(v):
            x0, y0 = px * step, py * step
            out[i, 0, y0 : y0 + side[i], x0 : x0 + side[i]] = 1
        return out

    def sim(self, v, w=None) -> torch.Tensor:
        return torch.from_numpy(self._render_numpy(v)).float()

    def compact_table(self, device: str = "cpu") -> CompactTable:
        imgs = self._render_numpy(self.factors_of(np.arange(self.num_observations)))
        packed = torch.from_numpy(np.packbits(imgs.reshape(len(imgs), -1), axis=1)).to(device)
        shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=device)
        shape = self.observation_shape

        def decode(rows: torch.Tensor) -> torch.Tensor:
            bits = (rows.unsqueeze(-1) >> shifts) & 1
            return bits.reshape(len(rows), *shape).float()

        return CompactTable(packed, decode)


class ToyGrey(ToySquares):
    """Grey squares with a nuisance brightness: no compact table, not binary."""

    name = "toy_grey"
    binary = False
    has_nuisance = True

    def sample_nuisance(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(0.3, 1.0, size=(n, 1))

    def sim(self, v, w=None) -> torch.Tensor:
        x = super().sim(v)
        if w is not None:
            x = x * torch.as_tensor(w, dtype=torch.float32).view(-1, 1, 1, 1)
        return x

    def compact_table(self, device: str = "cpu") -> None:
        return None


class ToyTwoSquares(GridSimulator):
    """Two grey squares that do not overlap, 32 x 32 px; factor i is the brightness of square i
    (10 levels). The squares cover equally many pixels, so the two factors move the image along
    orthogonal directions of equal length: an isotropic Gaussian prior is then equally happy
    with any rotation of the two (Locatello et al. 2019, Theorem 1), and which rotation an
    unsupervised VAE ends in is chance. Pairs that differ in one brightness pin the axes down
    (Locatello et al. 2020). Used by the weak-supervision learning test."""

    name = "toy_two_squares"
    factor_names = ("brightness_a", "brightness_b")
    factor_sizes = (10, 10)
    observation_shape = (1, 32, 32)
    binary = False

    def sim(self, v, w=None) -> torch.Tensor:
        v = self.check_factors(v)
        out = np.zeros((len(v), 1, 32, 32), dtype=np.float32)
        levels = (v.astype(np.float32) + 0.5) / self.factor_sizes[0]  # (0, 1)
        out[:, 0, 1:15, 1:15] = levels[:, 0, None, None]
        out[:, 0, 17:31, 17:31] = levels[:, 1, None, None]
        return torch.from_numpy(out)
