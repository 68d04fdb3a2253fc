"""Modularity and explicitness of Ridgeway & Mozer (2018), "Learning Deep Disentangled
Embeddings with the F-Statistic Loss", Sec. 3.

Modularity (Eq. 2): with ``m_dk`` the mutual information between code dimension d (histogram
discretised, 20 bins, disentanglement_lib's estimator) and factor k, and ``theta_d`` its
largest value, ``delta_d = sum_{k != k*} m_dk^2 / (theta_d^2 (K - 1))`` and
``modularity = mean_d (1 - delta_d)``; a dimension with no information at all scores 0.
Pure noise is *not* at the bottom: the plug-in MI's upward bias grows with a factor's number
of values, so every noise dimension looks "mostly about" the factor with most values and
scores around 0.6-0.7. That is the definition.

Explicitness (Sec. 3): per factor, a multinomial ``LogisticRegression``
(scikit-learn defaults) on standardised codes; the factor's score is the macro-averaged ROC
AUC of its predicted class probabilities, and explicitness is the mean over factors (train and
test). Chance is 0.5. Defaults as disentanglement_lib: 10,000 train, 5,000 test observations.
"""

from __future__ import annotations

import warnings

import numpy as np

from dbench.contracts import Simulator
from dbench.metric_spec import metric
from dbench.metrics._information import mi_matrix
from dbench.metrics._sampling import sample_codes
from dbench.representation import Representation

FAST = {"num_train": 2000, "num_test": 1000}


def modularity_from_mi(mi: np.ndarray) -> float:
    """Mean modularity of a (D, K) mutual-information matrix (Ridgeway & Mozer 2018, Eq. 2)."""
    squared = mi**2
    theta = squared.max(axis=1)
    k = squared.shape[1]
    if k < 2:
        return float(np.mean(theta > 0))  # one factor: any informative dimension is modular
    delta = np.divide(
        squared.sum(axis=1) - theta, theta * (k - 1), out=np.ones_like(theta), where=theta > 0
    )
    per_dim = np.where(theta > 0, 1.0 - delta, 0.0)
    return float(np.mean(per_dim))


def _macro_auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Mean one-vs-rest ROC AUC over the classes that have positives and negatives in ``y``.

    Small samples can miss a class in train or test; sklearn's ``roc_auc_score`` would then
    raise, so such classes are skipped (a class unseen in training has probability 0). One
    multilabel ``roc_auc_score`` call (``average=None``) scores every class, column by column.
    """
    from sklearn.metrics import roc_auc_score

    present = np.unique(y)
    if len(present) < 2:
        return 0.5  # one class only: no class has negatives
    column = {c: i for i, c in enumerate(classes.tolist())}
    scores = np.zeros((len(y), len(present)))
    for j, c in enumerate(present.tolist()):
        if c in column:
            scores[:, j] = proba[:, column[c]]
    onehot = (y[:, None] == present[None, :]).astype(np.int64)
    return float(np.mean(roc_auc_score(onehot, scores, average=None)))


def _explicitness(z_train, v_train, z_test, v_test, seed) -> tuple[float, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    mean, std = z_train.mean(axis=0), z_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant dimension stays 0: no information
    z_train, z_test = (z_train - mean) / std, (z_test - mean) / std
    train, test = [], []
    for k in range(v_train.shape[1]):
        if len(np.unique(v_train[:, k])) < 2:
            train.append(0.5)
            test.append(0.5)
            continue
        classifier = LogisticRegression(random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier.fit(z_train, v_train[:, k])
        for z, v, out in ((z_train, v_train, train), (z_test, v_test, test)):
            out.append(_macro_auc(v[:, k], classifier.predict_proba(z), classifier.classes_))
    return float(np.mean(train)), float(np.mean(test))


@metric(version="1", primary="modularity", fast=FAST)
def modularity(
    sim: Simulator,
    rep: Representation,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    num_bins: int = 20,
) -> dict[str, float]:
    """Modularity and explicitness (Ridgeway & Mozer 2018, Sec. 3)."""
    v_train, z_train = sample_codes(sim, rep, rng, num_train)
    v_test, z_test = sample_codes(sim, rep, rng, num_test)
    mi = mi_matrix(z_train, v_train, num_bins)
    explicit_train, explicit_test = _explicitness(
        z_train, v_train, z_test, v_test, int(rng.integers(2**31 - 1))
    )
    return {
        "modularity": modularity_from_mi(mi),
        "explicitness_train": explicit_train,
        "explicitness_test": explicit_test,
    }
