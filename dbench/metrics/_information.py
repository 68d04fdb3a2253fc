"""The histogram estimator of mutual information, shared by MIG, MIG-sup, DCIMIG, JEMMIG,
modularity and the unsupervised scores (disentanglement_lib's estimator, re-implemented).

One preamble serves them all: draw ``num_train`` observations, take their mean codes,
discretise each code dimension into ``num_bins`` equal-width histogram bins
(:func:`~dbench.metrics._sampling.histogram_discretize`) and estimate plug-in mutual
information and entropies from the contingency tables
(:func:`~dbench.metrics._sampling.discrete_mutual_info`). :class:`Binned` holds one such
sample and computes each quantity once, when a score first asks for it (codes one has
already: ``Binned(z, v, num_bins)``); :func:`mi_matrix` is the (codes x factors) matrix alone;
:func:`histogram_metric` turns a score of a :class:`Binned` sample into a metric function
``fn(sim, rep, rng, *, num_train, num_bins)``, so the estimator's two settings and their
defaults are declared once. A metric module keeps its formula on plain arrays
(``mig_from_mi(mi, entropy)``), testable on hand-made matrices.

Cost: milliseconds at the defaults (histogram MI of 10,000 codes). MIG-sup, DCIMIG and JEMMIG
are nevertheless left out of the default suite (``cheap=False``): the default leaderboard
shows one column per cheap metric and must stay within 160 characters.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import numpy as np

from dbench.contracts import Simulator
from dbench.metrics._sampling import (
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
    sample_codes,
)
from dbench.representation import Representation


class Binned:
    """Factors ``v`` (n, K) and codes ``z`` (n, D) of one sample, the codes histogram-binned;
    every estimate is computed on first use and kept."""

    def __init__(self, z: np.ndarray, v: np.ndarray, num_bins: int = 20):
        self.codes, self.factors, self.num_bins = z, v, num_bins

    @cached_property
    def binned(self) -> np.ndarray:
        """The codes' bin labels (n, D)."""
        return histogram_discretize(self.codes, self.num_bins)

    @cached_property
    def mi(self) -> np.ndarray:
        """Plug-in mutual information (nats) of each code dimension with each factor (D, K)."""
        return discrete_mutual_info(self.binned, self.factors)

    @cached_property
    def factor_entropy(self) -> np.ndarray:
        """Plug-in entropy (nats) of each factor in the sample (K,)."""
        return discrete_entropy(self.factors)

    @cached_property
    def code_entropy(self) -> np.ndarray:
        """Plug-in entropy (nats) of each binned code dimension (D,)."""
        return discrete_entropy(self.binned)

    @cached_property
    def code_mi(self) -> np.ndarray:
        """Plug-in mutual information (nats) between every pair of code dimensions (D, D)."""
        return discrete_mutual_info(self.binned, self.binned)


def mi_matrix(z: np.ndarray, v: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Mutual information (D, K) of codes ``z`` (n, D), each binned into ``num_bins``
    equal-width bins, with the discrete factors ``v`` (n, K)."""
    return Binned(z, v, num_bins).mi


def histogram_metric(
    score: Callable[[Binned], dict[str, float]],
) -> Callable[..., dict[str, float]]:
    """The metric function of ``score``: it draws ``num_train`` observations (factors and
    mean codes), bins each code dimension into ``num_bins`` bins and scores that
    :class:`Binned` sample. Name, docstring and module are ``score``'s, so the metric is
    described (``dbench metrics NAME``) from its own module; declare it with ``@metric``."""

    def fn(
        sim: Simulator,
        rep: Representation,
        rng: np.random.Generator,
        *,
        num_train: int = 10_000,
        num_bins: int = 20,
    ) -> dict[str, float]:
        v, z = sample_codes(sim, rep, rng, num_train)
        return score(Binned(z, v, num_bins))

    fn.__name__ = fn.__qualname__ = score.__name__
    fn.__doc__, fn.__module__ = score.__doc__, score.__module__
    return fn
