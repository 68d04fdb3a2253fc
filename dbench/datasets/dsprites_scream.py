"""scream-dSprites (Locatello et al. 2019; disentanglement_lib's ``ScreamDSprites``).

dSprites' factors and sprite (same sources: file, cache or procedural renderer), drawn over a
background cut from a painting. For each image: a random 64x64 crop of the background image,
colour-shifted as ``(crop + c) / 2`` with one random RGB colour ``c`` uniform in [0, 1]^3,
and the sprite drawn by inverting the crop's colours under it (``1 - background``). The crop
position and the colour are the nuisance w, (n, 5) float64: crop row, crop column, c.

The background is the user's image when present (``<data root>/scream.jpg`` or
``background=FILE``; the study used Edvard Munch's "The Scream"), scaled as disentanglement_lib
does (``thumbnail((350, 274))``: at most 350 wide and 274 high, aspect kept). Without it, a
procedural painterly texture stands in: swirling bands of warm sky colours over a dark blue
landscape crossed by a brown diagonal, brushed with stroke noise, all from one seeded
generator (:func:`painterly`). ``describe()`` records which, with its checksum.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from dbench.checks import SEED, Maybe, OfType, check_declared
from dbench.datasets.dsprites_variants import _DSpritesVariant, hashed_uniform
from dbench.datasets.files import sha256_file
from dbench.errors import UserError

FILE_NAME = "scream.jpg"
THUMBNAIL = (350, 274)  # PIL thumbnail box: width, height
TEXTURE_VERSION = "painterly-v1"
CROP = 64


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Value noise: a (cells+1)^2 random grid, bicubic-like (smoothstep) interpolated."""
    h, w = shape
    grid = rng.standard_normal((cells + 1, cells + 1))
    y = np.linspace(0, cells, h, endpoint=False)
    x = np.linspace(0, cells, w, endpoint=False)
    y0, x0 = y.astype(int), x.astype(int)
    ty, tx = y - y0, x - x0
    ty, tx = ty * ty * (3 - 2 * ty), tx * tx * (3 - 2 * tx)
    a = grid[y0][:, x0] * (1 - tx) + grid[y0][:, x0 + 1] * tx
    b = grid[y0 + 1][:, x0] * (1 - tx) + grid[y0 + 1][:, x0 + 1] * tx
    return a * (1 - ty[:, None]) + b * ty[:, None]


def _fbm(rng: np.random.Generator, shape: tuple[int, int], cells: int, octaves: int) -> np.ndarray:
    return sum(0.5**o * _smooth_noise(rng, shape, cells * 2**o) for o in range(octaves))


def _palette(t: np.ndarray, colours: list[tuple[float, float, float]]) -> np.ndarray:
    """Colours at positions t in [0, 1] along a piecewise-linear gradient."""
    stops = np.asarray(colours)
    pos = np.clip(t, 0, 1) * (len(stops) - 1)
    i = np.minimum(pos.astype(int), len(stops) - 2)
    f = (pos - i)[..., None]
    return stops[i] * (1 - f) + stops[i + 1] * f


def painterly(seed: int = 0, height: int = 274, width: int = 221) -> np.ndarray:
    """A painterly RGB texture (height, width, 3) in [0, 1] from seeded noise: warped sky bands
    in orange, yellow and red above a swirling dark blue-green landscape, a brown diagonal
    band across the lower part, and brush-stroke streaks along the flow."""
    rng = np.random.default_rng(seed)
    shape = (height, width)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    warp = _fbm(rng, shape, 3, 4)
    flow = _fbm(rng, shape, 2, 3)
    sky_t = 0.5 + 0.5 * np.sin(2 * np.pi * (3.5 * y + 0.35 * warp + 0.25 * np.sin(5 * x)))
    sky = _palette(
        sky_t,
        [(0.55, 0.12, 0.08), (0.86, 0.34, 0.10), (0.96, 0.62, 0.16), (0.98, 0.82, 0.36),
         (0.80, 0.45, 0.22), (0.45, 0.50, 0.62)],
    )  # fmt: skip
    land_t = 0.5 + 0.5 * np.sin(2 * np.pi * (2.2 * np.hypot(x - 0.25, y - 0.75) + 0.5 * flow))
    land = _palette(
        land_t,
        [(0.05, 0.08, 0.22), (0.12, 0.22, 0.42), (0.20, 0.38, 0.45), (0.30, 0.42, 0.28),
         (0.10, 0.16, 0.30)],
    )  # fmt: skip
    horizon = 0.46 + 0.06 * np.sin(6 * x + 1.0) + 0.04 * warp
    sky_mask = 1 / (1 + np.exp((y - horizon) * 60))
    img = sky * sky_mask[..., None] + land * (1 - sky_mask[..., None])
    # the bridge: a brown-orange diagonal band, striped along its length
    across = (y - (0.62 + 0.55 * x)) / np.hypot(1, 0.55)
    bridge = np.exp(-((across / 0.07) ** 2))
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (across * 40 + 0.2 * warp))
    wood = _palette(stripes, [(0.36, 0.20, 0.10), (0.68, 0.40, 0.18), (0.85, 0.55, 0.30)])
    img = img * (1 - bridge[..., None]) + wood * bridge[..., None]
    # brush strokes: fine noise stretched along the bands, brightening and darkening
    strokes = _smooth_noise(rng, (height, width // 4 + 1), 60)
    strokes = np.repeat(strokes, 4, axis=1)[:, :width]
    img = img * (1 + 0.12 * strokes[..., None]) + 0.02 * _fbm(rng, shape, 40, 2)[..., None]
    return np.clip(img, 0.0, 1.0)


class ScreamDSprites(_DSpritesVariant):
    """dSprites over a colour-shifted crop of a painting, the sprite in inverted colours."""

    name = "dsprites_scream"
    variant = "scream-v1"
    nuisance_doc = "crop row, crop column and RGB shift c in [0, 1)^3 of the background, (n, 5)"

    def __init__(
        self,
        data_dir: str | None = None,
        source: str = "auto",
        device: str = "cpu",
        background: str | None = None,
        texture_seed: int = 0,
    ):
        import torch

        super().__init__(data_dir=data_dir, source=source, device=device)
        check_declared(self.constraints, {"background": background, "texture_seed": texture_seed},
                       self.name)  # fmt: skip
        path = Path(background) if background else self.base.data_dir / FILE_NAME
        if path.is_file():
            image = _read_background(path)
            self.background_info = {
                "source": f"file:{path.name}",
                "checksum": f"sha256:{sha256_file(path)}",
                "path": str(path),
            }
        elif background:
            raise UserError(f"dsprites_scream: no background image at {path}")
        else:
            image = painterly(texture_seed)
            digest = hashlib.sha256(np.round(image * 255).astype(np.uint8).tobytes()).hexdigest()
            self.background_info = {
                "source": "procedural",
                "checksum": f"{TEXTURE_VERSION}:{digest[:16]}",
                "seed": texture_seed,
            }
        if image.shape[0] <= CROP or image.shape[1] <= CROP:
            raise UserError(f"dsprites_scream: the background {image.shape[:2]} is under 65 px")
        self._background = torch.as_tensor(image, dtype=torch.float32, device=self.device)
        self.crop_range = (image.shape[0] - CROP, image.shape[1] - CROP)

    @property
    def constraints(self) -> dict[str, Any]:
        """dSprites' own (``source``), the painting's seed and the background image's path."""
        return {**super().constraints, "texture_seed": SEED,
                "background": Maybe(OfType((str, os.PathLike), "a path to an image"))}  # fmt: skip

    def sample_nuisance(self, n: int, rng: np.random.Generator) -> np.ndarray:
        rows = rng.integers(0, self.crop_range[0], size=n)
        cols = rng.integers(0, self.crop_range[1], size=n)
        return np.column_stack([rows, cols, rng.uniform(0, 1, size=(n, 3))]).astype(np.float64)

    def _nuisance_of(self, v: np.ndarray) -> np.ndarray:
        import torch

        u = hashed_uniform(torch.as_tensor(self.index_of(v)), 5).double().numpy()
        u[:, 0] = np.floor(u[:, 0] * self.crop_range[0])
        u[:, 1] = np.floor(u[:, 1] * self.crop_range[1])
        return u

    def _paint(self, sprite, w):
        import torch

        w = np.asarray(w, dtype=np.float64)
        bad = w.ndim != 2 or w.shape[1] != 5
        if not bad:
            crop = w[:, :2]
            bad = bool(
                (crop != np.floor(crop)).any()
                or (crop < 0).any()
                or (crop[:, 0] >= self.crop_range[0]).any()
                or (crop[:, 1] >= self.crop_range[1]).any()
                or (w[:, 2:] < 0).any()
                or (w[:, 2:] > 1).any()
            )
        if bad:
            raise UserError(
                f"{self.name}: nuisance must be (n, 5): crop row < {self.crop_range[0]}, crop "
                f"column < {self.crop_range[1]} (whole numbers) and an RGB shift in [0, 1]"
            )
        wt = torch.as_tensor(w, dtype=torch.float32, device=self.device)
        ar = torch.arange(CROP, device=self.device)
        rows = wt[:, 0].long()[:, None] + ar
        cols = wt[:, 1].long()[:, None] + ar
        crop = self._background[rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        background = (crop + wt[:, 2:, None, None]) / 2
        return torch.where(sprite > 0.5, 1 - background, background)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["checksum"] = f"{info['checksum']}+{self.background_info['checksum']}"
        info["background"] = self.background_info
        return info


def _read_background(path: Path) -> np.ndarray:
    """The user's painting as float RGB (H, W, 3) in [0, 1], thumbnailed as in the study."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail(THUMBNAIL, Image.LANCZOS)
            return np.asarray(image, dtype=np.float64) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"dsprites_scream: {path} is not a readable image ({exc})") from None
