"""JEMMIG of Do & Tran (2020), "Theory and Evaluation Metrics for Learning Disentangled
Representations", ICLR, Sec. 5 (joint entropy minus mutual information gap).

For factor v_k with most informative code dimension ``z*`` and runner-up ``z°``:

``JEMMIG(v_k) = H(z*, v_k) - I(z*; v_k) + I(z°; v_k)``

``H(z*, v_k) - I(z*; v_k) = H(z* | v_k) + H(v_k | z*)`` is 0 only when ``z*`` and ``v_k``
determine each other, so unlike MIG it also penalises a ``z*`` that carries anything besides
``v_k`` (noise included); the last term penalises a second dimension holding ``v_k``.
``jemmig`` is the mean over factors in nats: 0 is best (**lower is better**).

Do & Tran bound it by ``0 <= JEMMIG(v_k) <= H(v_k) + log(#bins)`` and normalise with that
bound; ``jemmig_norm = 1/K sum_k (1 - JEMMIG(v_k) / (H(v_k) + log(#bins)))`` is that
normalised form, in [0, 1] with **higher better** (as Carbonneau et al. 2020 report it), and
is the headline score. A constant code scores about 0.5 on it, not 0: it carries no noise,
only no information (``JEMMIG = H(v_k)``); pure noise scores near 0.

Estimator: Do & Tran quantise samples of q(z|x); the harness has mean codes, so we use the
estimator of our MIG: ``num_bins`` equal-width histogram bins per dimension over
``num_train`` observations and plug-in entropies, with ``#bins = num_bins``. Factors that
never vary in the sample are left out.

Cost: milliseconds; outside the default suite all the same (``cheap=False``, see
:mod:`dbench.metrics._information`): name it in ``--metrics`` to score it.
"""

from __future__ import annotations

import numpy as np

from dbench.metric_spec import metric
from dbench.metrics._information import Binned, histogram_metric

FAST = {"num_train": 3000}


def jemmig_from_mi(
    mi: np.ndarray, code_entropy: np.ndarray, factor_entropy: np.ndarray, num_bins: int
) -> tuple[float, float]:
    """(JEMMIG in nats, its normalised form) from a (D, K) mutual-information matrix, the
    discretised codes' entropies (D,) and the factors' entropies (K,)."""
    keep = factor_entropy > 0
    if not keep.any():
        return 0.0, 0.0
    mi, factor_entropy = mi[:, keep], factor_entropy[keep]
    best = np.argmax(mi, axis=0)  # z* per factor (ties: the lowest dimension index)
    columns = np.arange(mi.shape[1])
    top = mi[best, columns]
    runner_up = np.sort(mi, axis=0)[-2] if mi.shape[0] > 1 else np.zeros_like(top)
    joint = code_entropy[best] + factor_entropy - top  # H(z*, v_k) = H(z*) + H(v_k) - I
    raw = joint - top + runner_up
    normalised = 1.0 - raw / (factor_entropy + np.log(num_bins))
    return float(np.mean(raw)), float(np.mean(normalised))


def jemmig_of(sample: Binned) -> tuple[float, float]:
    """(JEMMIG, normalised JEMMIG) of a binned sample (``#bins`` is its ``num_bins``)."""
    mi, bins = sample.mi, sample.num_bins
    return jemmig_from_mi(mi, sample.code_entropy, sample.factor_entropy, bins)


@metric(version="1", primary="jemmig_norm", lower_is_better=("jemmig",), cheap=False, fast=FAST)
@histogram_metric
def jemmig(sample: Binned) -> dict[str, float]:
    """JEMMIG (Do & Tran 2020): raw (nats, lower is better) and normalised (higher is better)."""
    raw, normalised = jemmig_of(sample)
    return {"jemmig": raw, "jemmig_norm": normalised}
