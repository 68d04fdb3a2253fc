"""DCIMIG of Sepliarskaia, Kiseleva and de Rijke (2019), "How to Not Measure Disentanglement"
(arXiv:1910.05587; also titled "Evaluating Disentangled Representations"), Sec. 5.

A MIG that is disentangled, complete and informative at once (hence the name):

1. each code dimension z_i keeps the gap between its largest and second-largest mutual
   information with a factor, ``R_i = I(z_i; v_{l_i}) - max_{k != l_i} I(z_i; v_k)``, credited
   to its best factor ``l_i``;
2. each factor keeps its best credited gap, ``S_k = max_{i: l_i = k} R_i`` (0 if no dimension
   is mostly about it);
3. ``DCIMIG = sum_k S_k / sum_k H(v_k)``.

So a factor held by no dimension, a dimension holding two factors, and duplicated dimensions
(only the best copy counts, but nothing is lost) behave as the paper intends: a dimension
split between factors contributes only its gap. Estimator as our MIG: mean codes of
``num_train`` observations, ``num_bins`` equal-width histogram bins per dimension, plug-in
mutual information (nats) with the discrete factors; with 20 bins the ground truth stays below
1 on dSprites, since bins merge orientation and position values.

Cost: milliseconds; outside the default suite all the same (``cheap=False``, see
:mod:`dbench.metrics._information`): name it in ``--metrics`` to score it.
"""

from __future__ import annotations

import numpy as np

from dbench.metric_spec import metric
from dbench.metrics._information import Binned, histogram_metric

FAST = {"num_train": 3000}


def dcimig_from_mi(mi: np.ndarray, entropy: np.ndarray) -> float:
    """DCIMIG of a (D, K) mutual-information matrix and the factors' entropies (K,)."""
    total = float(np.sum(entropy))
    if total <= 0:
        return 0.0  # no factor varies: nothing to capture
    d, k = mi.shape
    best = np.argmax(mi, axis=1)  # l_i (ties: the lowest factor index; the gap is 0 then)
    if k < 2:
        gap = mi[:, 0]
    else:
        top = np.sort(mi, axis=1)[:, ::-1]
        gap = top[:, 0] - top[:, 1]  # R_i
    credited = np.zeros(k)
    np.maximum.at(credited, best, gap)  # S_k
    return float(credited.sum() / total)


@metric(version="1", primary="dcimig", cheap=False, fast=FAST)
@histogram_metric
def dcimig(sample: Binned) -> dict[str, float]:
    """DCIMIG (Sepliarskaia et al. 2019): per-factor best dimension gap over total entropy."""
    return {"dcimig": dcimig_from_mi(sample.mi, sample.factor_entropy)}
