"""The non-learned and linear baselines of Higgins et al. (2017), Table 1.

``oracle`` is the table's "ground truth" (the factors themselves), ``raw`` the raw pixels,
``pca`` and ``ica`` scikit-learn's PCA and FastICA fitted on a random sample of images.
"""

from __future__ import annotations

import numpy as np

from dbench.checks import POSITIVE_INT
from dbench.contracts import FitContext, Observations, Simulator
from dbench.errors import UserError
from dbench.models.base import BaseModel
from dbench.models.state import canonical


def _flat_images(obs: Observations) -> np.ndarray:
    x = obs.images
    return x.reshape(len(x), -1).float().cpu().numpy()


class GroundTruth(BaseModel):
    """The generative factors (as grid indices) are the representation."""

    def fit(self, sim: Simulator, rng: np.random.Generator, ctx: FitContext) -> GroundTruth:
        return self

    def encode(self, obs: Observations) -> np.ndarray:
        return np.asarray(obs.factors, dtype=np.float64)


class RawPixels(BaseModel):
    """The flattened image is the representation."""

    def fit(self, sim: Simulator, rng: np.random.Generator, ctx: FitContext) -> RawPixels:
        return self

    def encode(self, obs: Observations) -> np.ndarray:
        return _flat_images(obs)


class _LinearBaseline(BaseModel):
    """A scikit-learn decomposition fitted on ``n_samples`` images drawn from the simulator."""

    constraints = {"n_components": POSITIVE_INT, "n_samples": POSITIVE_INT}

    def __init__(self, n_components: int = 10, n_samples: int = 10_000):
        self.set_checked(n_components=n_components, n_samples=n_samples)

    def _estimator(self, seed: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, sim: Simulator, rng: np.random.Generator, ctx: FitContext) -> _LinearBaseline:
        limit = min(self.n_samples, int(np.prod(sim.observation_shape)))
        if self.n_components > limit:  # checked before rendering anything
            raise UserError(
                f"{type(self).__name__}: n_components={self.n_components} exceeds "
                f"min(n_samples, pixels) = {limit}"
            )
        v = sim.sample_factors(self.n_samples, rng)
        w = sim.sample_nuisance(self.n_samples, rng)
        x = sim.sim(v, w).reshape(self.n_samples, -1).float().cpu().numpy()
        seed = int(rng.integers(2**31 - 1))
        self.estimator_ = canonical(self._estimator(seed).fit(x))
        return self

    def encode(self, obs: Observations) -> np.ndarray:
        return self.estimator_.transform(_flat_images(obs))

    def estimator_factories(self) -> dict:
        return {"estimator_": lambda: self._estimator(0)}


class PCAModel(_LinearBaseline):
    """Principal components (scikit-learn ``PCA``), 10 by default as in Higgins et al. 2017."""

    def _estimator(self, seed: int):
        from sklearn.decomposition import PCA

        return PCA(n_components=self.n_components, random_state=seed)

    def decode(self, z) -> np.ndarray:
        """Images from codes: the inverse transform (principal components back to pixels),
        clipped to [0, 1], as ``(n, C, H, W)`` for square images with 1 or 3 channels (the
        pixel count tells which: ``3 s^2`` is never a square), else flat ``(n, pixels)``."""
        if hasattr(z, "detach"):
            z = z.detach().cpu().numpy()
        x = self.estimator_.inverse_transform(np.asarray(z, dtype=np.float64))
        x = np.clip(x, 0.0, 1.0).astype(np.float32)
        pixels = x.shape[1]
        for channels in (1, 3):
            side = int(np.rint(np.sqrt(pixels / channels)))
            if channels * side * side == pixels:
                return x.reshape(len(x), channels, side, side)
        return x


class ICAModel(_LinearBaseline):
    """Independent components (scikit-learn ``FastICA``), 10 by default."""

    constraints = {**_LinearBaseline.constraints, "max_iter": POSITIVE_INT}

    def __init__(self, n_components: int = 10, n_samples: int = 10_000, max_iter: int = 400):
        super().__init__(n_components, n_samples)
        self.set_checked(max_iter=max_iter)

    def _estimator(self, seed: int):
        from sklearn.decomposition import FastICA

        return FastICA(
            n_components=self.n_components,
            max_iter=self.max_iter,
            whiten="unit-variance",
            random_state=seed,
        )
