"""An example third-party dbench plugin.

``randproj``: a fixed Gaussian random projection of the pixels to ``n_components`` dimensions
(a data-independent linear baseline). ``active_dims``: a toy unsupervised metric, the number of
latent dimensions whose variance exceeds a threshold. Neither imports dbench internals beyond
the public contracts: a model has ``fit(sim, rng, ctx)``, ``encode(obs)``, ``save``/``load``;
a metric is ``fn(sim, rep, rng, **settings) -> {score: value}``.
"""

from __future__ import annotations

import json

import numpy as np


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


def active_dims(sim, rep, rng, *, num_samples: int = 1000, threshold: float = 1e-2) -> dict:
    """Number of representation dimensions with variance above ``threshold``."""
    z = rep(sim.sample_factors(num_samples, rng), rng)
    return {"active_dims": float((z.var(axis=0) > threshold).sum())}
