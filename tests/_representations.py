"""Representations of dSprites' factor grid without images, shared by the metric tests.

Every representation is a deterministic function of the factors (identity, rotation,
duplicates, noise), so a cached and a re-encoded observation agree, as they would for a real
encoder; :data:`GRID` and :data:`CODES` are the small table whose information content the
hand-computed cases work out exactly (see ``tests/test_metrics_information.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from dbench.contracts import Observations
from dbench.errors import UserError
from dbench.registry import METRICS
from dbench.representation import Representation
from dbench.testing.toy import DSpritesFactors

SIZES = np.array(DSpritesFactors.factor_sizes)
STRIDES = DSpritesFactors().strides
CHANCE = float(np.mean(1 / SIZES))  # mean accuracy of guessing every factor


def hashed_noise(obs: Observations, dims: int) -> np.ndarray:
    """Deterministic N(0, 1)-like noise per observation (a function of its grid index), so a
    cached and a re-encoded observation agree, as they would for a real encoder."""
    index = (np.asarray(obs.factors) @ STRIDES).astype(np.uint64)
    cols = []
    for d in range(2 * dims):  # splitmix64 finaliser of (index, d): uniform 53-bit numbers
        offset = np.uint64((d + 1) * 0xBF58476D1CE4E5B9 % 2**64)
        x = index * np.uint64(0x9E3779B97F4A7C15) + offset
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
        cols.append(((x >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53)
    u = np.stack(cols, axis=1)
    # Box-Muller: Gaussian noise, so the Gaussian scores see what a VAE's noise looks like.
    return np.sqrt(-2 * np.log(u[:, :dims])) * np.cos(2 * np.pi * u[:, dims:])


def standardised(obs: Observations) -> np.ndarray:
    v = np.asarray(obs.factors, dtype=np.float64)
    return (v - (SIZES - 1) / 2) / np.sqrt((SIZES**2 - 1) / 12)  # exact grid mean and std


ROTATION = np.linalg.qr(np.random.default_rng(1234).normal(size=(5, 5)))[0]

REPRESENTATIONS = {
    "identity": lambda obs: np.asarray(obs.factors, dtype=np.float64),
    "standardised": standardised,
    "rotated": lambda obs: standardised(obs) @ ROTATION,
    "duplicated": lambda obs: np.repeat(standardised(obs), 2, axis=1),
    "extra_noise": lambda obs: np.hstack([standardised(obs), hashed_noise(obs, 5)]),
    "noise": lambda obs: hashed_noise(obs, 10),
    "constant": lambda obs: np.zeros((len(obs), 10)),
}


def bin_ceiling(num_bins: int = 20) -> np.ndarray:
    """Per factor, H(bin(v_k)) / H(v_k) with exact probabilities: what binning leaves of it
    (the most a histogram-estimated score can credit the ground truth with)."""
    ratios = []
    for k in SIZES:
        values = np.arange(k, dtype=float)
        edges = np.histogram(values, num_bins)[1]
        p = np.bincount(np.digitize(values, edges[:-1])) / k
        p = p[p > 0]
        ratios.append(-np.sum(p * np.log(p)) / np.log(k))
    return np.array(ratios)


class Pass:
    """One Representation per representation, shared by every metric (as in a run); it
    records the grid index of everything it encodes."""

    def __init__(self, name: str):
        self.sim = DSpritesFactors()
        self.encoded: list[np.ndarray] = []
        self.rep = Representation(self.sim, self.encode)
        self.fn = REPRESENTATIONS[name]

    def encode(self, obs: Observations) -> np.ndarray:
        self.encoded.append(self.sim.index_of(obs.factors))
        return self.fn(obs)


def assert_one_pass(passes: dict[str, Pass], names: tuple[str, ...] = ("rotated", "noise")):
    """Each shared pass encoded every observation it was asked for once, and was asked more."""
    for r in names:
        shared = passes[r]
        seen = np.concatenate(shared.encoded)
        assert len(np.unique(seen)) == len(seen) == shared.rep.encoded < shared.rep.requested


# The hand-computed cases' table: two binary factors on their full 2 x 2 grid (each
# combination 25 times) and three latents, z1 = v1, z2 = v2 (1 + v1) (values 0, 1, 0, 2),
# z3 = 0. With L = log 2: H(v1) = H(v2) = L, H(z2) = 1.5 L, I(z1; v1) = L, I(z1; v2) = 0,
# I(z2; v2) = L (z2 > 0 iff v2 = 1), I(z2; v1) = H(z2) - H(z2 | v1) = 0.5 L; z3 carries nothing.
L = np.log(2)
GRID = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 25)
V1, V2 = GRID[:, 0], GRID[:, 1]
CODES = np.column_stack([V1, V2 * (1 + V1), np.zeros(len(GRID))]).astype(np.float64)


def score(metric: str, rep: Representation, settings: dict | None = None, seed: int = 0):
    """``metric`` on ``rep`` with its fast preset and ``settings`` on top."""
    return METRICS.get(metric)(
        rep.sim, rep, np.random.default_rng(seed), fast=True, **settings or {}
    )


def score_table(passes: dict[str, Pass], needed: dict[str, list[str]], settings: dict) -> dict:
    """``{(metric, representation): scores}`` for the representations each metric needs."""
    return {(m, r): score(m, passes[r].rep, settings.get(m)) for m in needed for r in needed[m]}


def assert_declares_its_scores(scores: dict, name: str, needed: dict[str, list[str]]) -> None:
    """The spec names scores the metric returns; every score is a finite float."""
    spec = METRICS.get(name)
    keys = set(scores[(name, needed[name][0])])
    assert spec.primary in keys and set(spec.lower_is_better) <= keys
    assert isinstance(spec.version, str) and spec.fast and spec.fn.__doc__
    spec.check(dict(spec.fast))  # the preset is a valid setting
    for r in needed[name]:
        values = scores[(name, r)].values()
        assert all(isinstance(v, float) and np.isfinite(v) for v in values), (name, r)


def assert_rejected_before_drawing(name: str, settings: dict, message: str) -> None:
    """Bad settings are a one-line UserError raised before any observation is drawn."""
    sim = DSpritesFactors()
    rep = Representation(sim, REPRESENTATIONS["identity"])
    with pytest.raises(UserError, match=message) as caught:
        METRICS.get(name)(sim, rep, np.random.default_rng(0), **settings)
    assert "\n" not in str(caught.value)
    assert rep.requested == 0
