"""The Separated Attribute Predictability score of Kumar et al. (2018), "Variational Inference
of Disentangled Latent Concepts from Unlabeled Observations", Sec. 3.

Score matrix ``S[d, k]``: how well code dimension d *alone* predicts factor k. SAP is the mean
over factors of the gap between the best and the second-best dimension:
``SAP = 1/K sum_k (S[d1(k), k] - S[d2(k), k])``.

Discrete form (default, as disentanglement_lib for dSprites' discrete factors): ``S[d, k]``
is the test accuracy of a one-feature ``LinearSVC(C=0.01, class_weight="balanced")`` trained
on ``num_train`` raw codes. A linear classifier on one feature can only cut the line into
ordered pieces with one-vs-rest hyperplanes, so with many-valued factors (orientation: 40)
even the ground truth scores modestly; that is the definition. Continuous form
(``continuous_factors=True``, the paper's): ``S[d, k]`` is the squared correlation (R^2 of a
linear regression), 0 for a dimension with no variance.
"""

from __future__ import annotations

import warnings

import numpy as np

from dbench.contracts import Simulator
from dbench.metric_spec import metric
from dbench.metrics._sampling import sample_codes
from dbench.representation import Representation

FAST = {"num_train": 2000, "num_test": 1000}


def _discrete_scores(z, v, z_test, v_test, svm_c, seed) -> np.ndarray:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    scores = np.zeros((z.shape[1], v.shape[1]))
    for d in range(z.shape[1]):
        for k in range(v.shape[1]):
            if len(np.unique(v[:, k])) < 2:
                continue  # a factor that never varied: nothing to separate, no gap
            classifier = LinearSVC(C=svm_c, class_weight="balanced", random_state=seed)
            with warnings.catch_warnings():
                # Default iterations are part of the protocol; liblinear may stop early there.
                warnings.simplefilter("ignore", ConvergenceWarning)
                classifier.fit(z[:, d : d + 1], v[:, k])
            scores[d, k] = np.mean(classifier.predict(z_test[:, d : d + 1]) == v_test[:, k])
    return scores


def _continuous_scores(z: np.ndarray, v: np.ndarray) -> np.ndarray:
    zc = z - z.mean(axis=0)
    vc = v - v.mean(axis=0)
    cov = zc.T @ vc / (len(z) - 1)
    var_z = zc.var(axis=0, ddof=1)[:, None]
    var_v = vc.var(axis=0, ddof=1)[None, :]
    denom = var_z * var_v
    return np.divide(cov**2, denom, out=np.zeros_like(cov), where=(var_z > 1e-12) & (var_v > 0))


@metric(version="1", primary="sap", fast=FAST)
def sap(
    sim: Simulator,
    rep: Representation,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    continuous_factors: bool = False,
    svm_c: float = 0.01,
) -> dict[str, float]:
    """SAP score (Kumar et al. 2018, Sec. 3); discrete (LinearSVC accuracy) by default."""
    v, z = sample_codes(sim, rep, rng, num_train)
    if continuous_factors:
        scores = _continuous_scores(z, v.astype(np.float64))
    else:
        v_test, z_test = sample_codes(sim, rep, rng, num_test)
        scores = _discrete_scores(z, v, z_test, v_test, svm_c, int(rng.integers(2**31 - 1)))
    if scores.shape[0] < 2:
        return {"sap": float(np.mean(scores))}  # one dimension: the runner-up is nothing
    top = np.sort(scores, axis=0)
    return {"sap": float(np.mean(top[-1] - top[-2]))}
