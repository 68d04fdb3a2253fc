"""dSprites variants with a nuisance factor w (disentanglement_lib; Locatello et al. 2019).

Both wrap :class:`~dbench.datasets.dsprites.DSprites` (same factors, same sources: file,
cache or procedural renderer) and turn its binary sprite into an RGB image:

- ``dsprites_color``: the sprite is painted one random colour, each RGB channel uniform in
  [0.5, 1] (disentanglement_lib's ``ColorDSprites``); w = that colour, (n, 3) float.
- ``dsprites_noisy``: the background is uniform noise in [0, 1] per pixel and channel, the
  sprite white on top, ``min(sprite + noise, 1)`` (its ``NoisyDSprites``); w = one int64 seed
  per image from which the noise is hashed, so w stays small (the noise itself would be
  12,288 floats per image) and the same w gives the same noise on any device.

The colour and the noise are nuisances (Locatello et al. 2019, Sec. 5): not factors of v, drawn by
``sample_nuisance(n, rng)`` from the caller's rng, and really used by ``sim(v, w)``.
``sim(v, None)`` does not fall back to a plain sprite: it uses a fixed nuisance per factor
vector, hashed from v's grid index, so it is deterministic and still looks like the dataset.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dbench.datasets.base import GridSimulator
from dbench.errors import UserError

_M32 = 0xFFFFFFFF


def hash32(x):
    """A 32-bit integer mix (Wellons' lowbias32) on int64 tensors, exact on CPU and CUDA: the
    products wrap in int64 and the mask keeps the low 32 bits."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def hashed_uniform(seed, count: int):
    """(n, count) float32 in [0, 1) from int64 seeds (n,): counter-based, so noise needs no
    generator state and any subset of images can be rendered alone."""
    import torch

    counter = torch.arange(count, device=seed.device, dtype=torch.int64)
    x = hash32(hash32(seed)[:, None] ^ hash32(counter * 0x9E3779B9 + 1)[None, :])
    return x.to(torch.float32) * (1.0 / 2**32)


class _DSpritesVariant(GridSimulator):
    """dSprites factors and sources, RGB images, a nuisance w."""

    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (3, 6, 40, 32, 32)
    observation_shape = (3, 64, 64)
    has_nuisance = True
    binary = False
    variant = ""

    def __init__(self, data_dir: str | None = None, source: str = "auto", device: str = "cpu"):
        import torch

        from dbench.datasets.dsprites import DSprites

        self.base = DSprites(data_dir=data_dir, source=source, device=device)
        self.device = torch.device(device)

    @property
    def constraints(self) -> dict[str, Any]:
        """dSprites' ``source``: passed on to it, which checks it."""
        return {"source": self.base.constraints["source"]}

    def _nuisance_of(self, v: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _paint(self, sprite, w):  # pragma: no cover - abstract
        raise NotImplementedError

    def sim(self, v: np.ndarray, w: np.ndarray | None = None):
        v = self.check_factors(v)
        if w is None:
            w = self._nuisance_of(v)
        w = np.asarray(w)
        if len(w) != len(v):
            raise ValueError(f"{self.name}: {len(v)} factor vectors but {len(w)} nuisances")
        sprite = self.base.sim(v, device=str(self.device))  # (n, 1, 64, 64) in {0, 1}
        return self._paint(sprite.to(self.device), w)

    def compact_table(self, device: str = "cpu") -> None:
        return None  # the nuisance changes every draw: batches come from sim

    def prepare(self, progress: bool = True):
        """The variants draw on dSprites' images: prepare its cache."""
        return self.base.prepare(progress=progress)

    def cache_state(self) -> str:
        """dSprites' cache state: the variants have no cache of their own."""
        return f"uses dsprites ({self.base.source}): {self.base.cache_state()}"

    def describe(self) -> dict[str, Any]:
        base = self.base.describe()
        return {
            **super().describe(),
            "source": base["source"],
            "checksum": f"{base['checksum']}+{self.variant}",
            "base": base,
            "binary": False,
            "nuisance": self.nuisance_doc,
        }


class ColorDSprites(_DSpritesVariant):
    """dSprites with the sprite in a random colour, each channel uniform in [0.5, 1]."""

    name = "dsprites_color"
    variant = "color-v1"
    nuisance_doc = "sprite RGB colour, each channel U(0.5, 1), (n, 3)"

    def sample_nuisance(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(0.5, 1.0, size=(n, 3))

    def _nuisance_of(self, v: np.ndarray) -> np.ndarray:
        import torch

        seed = torch.as_tensor(self.index_of(v))
        return 0.5 + 0.5 * hashed_uniform(seed, 3).double().numpy()

    def _paint(self, sprite, w):
        import torch

        if w.shape[1:] != (3,) or (w < 0).any() or (w > 1).any():
            raise UserError(f"{self.name}: nuisance must be (n, 3) colours in [0, 1]")
        colour = torch.as_tensor(w, dtype=torch.float32, device=self.device)
        return sprite * colour[:, :, None, None]


class NoisyDSprites(_DSpritesVariant):
    """dSprites, white sprite on a background of uniform noise (one seed per image)."""

    name = "dsprites_noisy"
    variant = "noisy-v1"
    nuisance_doc = "int64 seed per image; background noise U(0, 1) hashed from it, (n,)"

    def sample_nuisance(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, 2**62, size=n, dtype=np.int64)

    def _nuisance_of(self, v: np.ndarray) -> np.ndarray:
        return self.index_of(v) + 0x5EED_0000_0000  # distinct from small drawn seeds

    def _paint(self, sprite, w):
        import torch

        if w.ndim != 1 or not np.issubdtype(w.dtype, np.integer):
            raise UserError(f"{self.name}: nuisance must be (n,) integer seeds")
        seed = torch.as_tensor(w, dtype=torch.int64, device=self.device)
        noise = hashed_uniform(seed, 3 * 64 * 64).view(len(w), 3, 64, 64)
        return torch.clamp(sprite + noise, max=1.0)
