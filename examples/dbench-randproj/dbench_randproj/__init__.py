"""An example third-party dbench plugin: one model, one metric and one dataset.

``randproj``: a fixed Gaussian random projection of the pixels to ``n_components`` dimensions
(a data-independent linear baseline). ``active_dims``: an unsupervised metric, the number of
latent dimensions that vary with the observation (the active units of Burda et al. 2016).
``crossbars``: a tiny binary dataset, a horizontal and a vertical bar whose positions and
thickness are the factors.

None of them inherits from dbench: a model has ``fit(sim, rng, ctx)``, ``encode(obs)``,
``save``/``load``; a dataset has the Simulator members (``factor_names``, ``sample_factors``,
``sim``, ``describe``, ...); a metric is ``fn(sim, rep, rng, **settings) -> {score: value}``,
declared with :func:`dbench.metric_spec.metric` so dbench knows its headline score.
``dbench.testing`` checks all three against those contracts (see ``tests/``).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from dbench.metric_spec import metric


class RandomProjection:
    """z = P x with P ~ N(0, 1/D) drawn from the run's random generator in ``fit``."""

    def __init__(self, n_components: int = 10):
        if not isinstance(n_components, int) or n_components < 1:
            from dbench.errors import UserError

            raise UserError(f"n_components must be a positive integer; got {n_components!r}")
        self.n_components = n_components

    def get_params(self) -> dict:
        return {"n_components": self.n_components}

    def fit(self, sim, rng, ctx):
        d = int(np.prod(sim.observation_shape))
        self.projection_ = rng.normal(0.0, 1.0 / np.sqrt(d), size=(d, self.n_components))
        return self

    def encode(self, obs):
        x = obs.images.reshape(len(obs), -1).cpu().numpy().astype(np.float64)
        return x @ self.projection_

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump({"projection": self.projection_.tolist()}, f)

    def load(self, path):
        with open(path) as f:
            self.projection_ = np.asarray(json.load(f)["projection"])
        return self


#: the share of a dimension's variance that must come back when the same observations are
#: encoded again: a code that ignores its input varies as much, but none of it repeats
REPEATABLE = 0.5


@metric(version="2", primary="active_dims", cheap=False, fast={"num_samples": 200})
def active_dims(sim, rep, rng, *, num_samples: int = 1000, threshold: float = 1e-2) -> dict:
    """Active units (Burda et al. 2016, "Importance Weighted Autoencoders"): the number of
    dimensions whose code varies with the observation, ``Cov_x(E[z | x]) > threshold``.

    The same ``num_samples`` factor vectors are encoded twice; the covariance of the two codes
    across observations estimates the variance of ``E[z | x]`` (noise added to the code, or a
    code that ignores the observation, does not repeat). A dimension is active when that
    covariance exceeds ``threshold`` and at least half its variance repeats.

    Parameters
    ----------
    num_samples : int
        Observations encoded (twice each; on a grid without nuisance the second encoding is
        the cached first).
    threshold : float
        Smallest repeatable variance of an active dimension (Burda et al. use 0.01).
    """
    v = sim.sample_factors(num_samples, rng)
    z1, z2 = rep(v, rng), rep(v, rng)
    d1, d2 = z1 - z1.mean(axis=0), z2 - z2.mean(axis=0)
    repeatable = (d1 * d2).mean(axis=0)
    variance = np.sqrt((d1**2).mean(axis=0) * (d2**2).mean(axis=0))
    active = (repeatable > threshold) & (repeatable >= REPEATABLE * variance)
    return {"active_dims": float(active.sum())}


class CrossBars:
    """A horizontal bar at ``row`` and a vertical bar at ``col``, both ``thickness`` + 1 px
    thick, on a black 32x32 image: 8 x 8 x 2 = 128 binary images, no nuisance.

    Observations are numbered in row-major grid order (``thickness`` fastest), which is what
    lets dbench encode each of them once per run (the ``FiniteGrid`` capability).
    """

    name = "crossbars"
    factor_names = ("row", "col", "thickness")
    factor_sizes = (8, 8, 2)
    observation_shape = (1, 32, 32)
    has_nuisance = False
    binary = True  # pixels are 0 or 1

    @property
    def num_observations(self) -> int:
        return int(np.prod(self.factor_sizes))

    def _strides(self) -> np.ndarray:
        sizes = np.asarray(self.factor_sizes)
        return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]])

    def index_of(self, v):
        return np.asarray(v, dtype=np.int64) @ self._strides()

    def factors_of(self, index):
        index = np.asarray(index, dtype=np.int64)
        return (index[:, None] // self._strides()) % np.asarray(self.factor_sizes)

    def sample_factors(self, n, rng):
        return rng.integers(0, self.factor_sizes, size=(n, len(self.factor_sizes)))

    def sample_nuisance(self, n, rng):
        return None

    def sim(self, v, w=None):
        import torch

        v = np.asarray(v, dtype=np.int64)
        if v.ndim != 2 or v.shape[1] != 3 or (v < 0).any() or (v >= self.factor_sizes).any():
            raise ValueError(f"crossbars: factors must be (n, 3) within {self.factor_sizes}")
        pixels = np.arange(32)
        start_row, start_col, width = 2 + 4 * v[:, :1], 2 + 4 * v[:, 1:2], 1 + v[:, 2:]
        rows = (pixels >= start_row) & (pixels < start_row + width)  # (n, 32)
        cols = (pixels >= start_col) & (pixels < start_col + width)
        images = rows[:, :, None] | cols[:, None, :]
        return torch.from_numpy(images[:, None].astype(np.float32))

    def describe(self):
        settings = {"factor_sizes": list(self.factor_sizes), "size": 32, "version": 1}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        checksum = f"crossbars-v1:{digest[:16]}"
        return {"name": self.name, "source": "procedural", "checksum": checksum}
