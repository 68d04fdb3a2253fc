"""MIG-sup of Li et al. (2020), "Progressive Learning and Disentanglement of Hierarchical
Representations", ICLR, Sec. 4 (the MIG-sup definition).

MIG (Chen et al. 2018) asks of each *factor* that one code dimension hold it; MIG-sup asks of
each *code dimension* that it hold one factor. With ``I_n(z_j; v_k) = I(z_j; v_k) / H(v_k)``,

``MIG-sup = 1/J sum_j (I_n(z_j; v_{k1(j)}) - I_n(z_j; v_{k2(j)}))``,

where ``k1(j)`` and ``k2(j)`` are the factors with the largest and second-largest normalised
information in ``z_j``. The normaliser is the factor's entropy ``H(v_k)``, as Li et al. define
it, and dbench divides by it; one widely used implementation divides by the code dimension's
entropy ``H(z_j)`` instead, so its numbers differ from the paper's and from dbench's. Averaged
over all J dimensions, so a dimension with no information counts 0: extra noise dimensions
lower the score, duplicated dimensions do not (MIG penalises those instead). Estimator as our
MIG: the mean codes of ``num_train`` observations, each dimension histogram-discretised into
``num_bins`` equal-width bins, plug-in mutual information; with 20 bins the ground truth stays
below 1 on dSprites (bins merge values).

Cost: milliseconds; outside the default suite all the same (``cheap=False``, see
:mod:`dbench.metrics._information`): name it in ``--metrics`` to score it.
"""

from __future__ import annotations

import numpy as np

from dbench.metric_spec import metric
from dbench.metrics._information import Binned, histogram_metric

FAST = {"num_train": 3000}


def mig_sup_from_mi(mi: np.ndarray, entropy: np.ndarray) -> float:
    """MIG-sup of a (D, K) mutual-information matrix and the factors' entropies (K,)."""
    nmi = np.divide(mi, entropy, out=np.zeros_like(mi), where=entropy > 0)
    if nmi.shape[1] < 2:
        return float(np.mean(nmi[:, 0]))  # one factor: no runner-up, the gap is all of it
    top = np.sort(nmi, axis=1)[:, ::-1]
    return float(np.mean(top[:, 0] - top[:, 1]))


@metric(version="1", primary="mig_sup", cheap=False, fast=FAST)
@histogram_metric
def mig_sup(sample: Binned) -> dict[str, float]:
    """MIG-sup (Li et al. 2020): per code dimension, the gap between its two most informative
    factors (MI normalised by the factor's entropy, as the paper; not by the code's),
    averaged over dimensions; histogram estimator, 20 bins."""
    return {"mig_sup": mig_sup_from_mi(sample.mi, sample.factor_entropy)}
