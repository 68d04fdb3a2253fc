"""DCI of Eastwood & Williams (2018), "A Framework for the Quantitative Evaluation of
Disentangled Representations", Sec. 2.

One regressor per factor predicts factor k from the code; its feature importances form the
column ``R[:, k]`` of the (D, K) importance matrix.

- Disentanglement (Eq. 2): ``D_d = 1 - H_K(P_d.)`` with ``P_dk = R_dk / sum_k R_dk`` and the
  entropy in base K; the total weights each dimension by its share of all importance,
  ``rho_d = sum_k R_dk / sum_dk R_dk``.
- Completeness (Eq. 3): ``C_k = 1 - H_D(P~_.k)``, ``P~_dk = R_dk / sum_d R_dk``, base D; the
  total weights each factor by its share of importance, as disentanglement_lib does (tree
  importances sum to 1 per factor, so with trees this is the plain mean over factors).
- Informativeness: how well the code predicts each factor, averaged over factors.

``importance="gbt"`` (default, as disentanglement_lib): scikit-learn's
``GradientBoostingClassifier`` with default settings per factor on ``num_train`` codes, no
scaling; informativeness is its train/test accuracy. It is slow (one tree per class per
boosting round: 4,000 trees for dSprites' orientation at the defaults), so this metric is not
run by default; its fast preset uses fewer samples and rounds. ``HistGradientBoosting``
would be faster but exposes no feature importances. ``importance="lasso"`` is the paper's
linear option: ``Lasso(alpha)`` on standardised codes and factor values, importance
``|W|``, informativeness the test R^2 (1 - NMSE, so higher stays better).
"""

from __future__ import annotations

import warnings

import numpy as np

from dbench.contracts import Simulator
from dbench.engine.representation import Representation
from dbench.metrics._sampling import sample_codes
from dbench.metrics.spec import metric

FAST = {"num_train": 600, "num_test": 300, "n_estimators": 10}


def _entropy(p: np.ndarray, base: int, axis: int) -> np.ndarray:
    """Entropy in ``base`` of distributions along ``axis`` (rows/columns normalised here)."""
    total = p.sum(axis=axis, keepdims=True)
    q = np.divide(p, total, out=np.zeros_like(p), where=total > 0)
    logs = np.log(q, out=np.zeros_like(q), where=q > 0)
    return -np.sum(q * logs, axis=axis) / np.log(base)


def scores_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of a (D, K) non-negative importance matrix (Eq. 2, 3).

    A dimension (factor) with no importance at all gets 0, not 1: nothing about it is
    disentangled (complete), and the weights ignore it anyway.
    """
    d, k = importance.shape
    total = importance.sum()
    if total <= 0:
        return 0.0, 0.0
    per_code = 1.0 - _entropy(importance, k, axis=1) if k > 1 else np.ones(d)
    per_code[importance.sum(axis=1) <= 0] = 0.0
    disentanglement = float(np.sum(per_code * importance.sum(axis=1) / total))
    per_factor = 1.0 - _entropy(importance, d, axis=0) if d > 1 else np.ones(k)
    per_factor[importance.sum(axis=0) <= 0] = 0.0
    completeness = float(np.sum(per_factor * importance.sum(axis=0) / total))
    return disentanglement, completeness


def _gbt(x_train, y_train, x_test, y_test, n_estimators, seed):
    from sklearn.ensemble import GradientBoostingClassifier

    importance = np.zeros((x_train.shape[1], y_train.shape[1]))
    train_acc, test_acc = [], []
    for k in range(y_train.shape[1]):
        if len(np.unique(y_train[:, k])) < 2:
            # Nothing to classify (the factor never varied in the sample): no importance.
            train_acc.append(1.0)
            test_acc.append(float(np.mean(y_test[:, k] == y_train[0, k])))
            continue
        model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
        model.fit(x_train, y_train[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        train_acc.append(float(np.mean(model.predict(x_train) == y_train[:, k])))
        test_acc.append(float(np.mean(model.predict(x_test) == y_test[:, k])))
    return importance, float(np.mean(train_acc)), float(np.mean(test_acc))


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # constant columns stay 0 after centring
    return (train - mean) / std, (test - mean) / std


def _lasso(x_train, y_train, x_test, y_test, alpha, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso

    x_train, x_test = _standardise(x_train, x_test)
    y_train, y_test = _standardise(y_train.astype(np.float64), y_test.astype(np.float64))
    importance = np.zeros((x_train.shape[1], y_train.shape[1]))
    train_r2, test_r2 = [], []
    for k in range(y_train.shape[1]):
        model = Lasso(alpha=alpha, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x_train, y_train[:, k])
        importance[:, k] = np.abs(model.coef_)
        for x, y, out in ((x_train, y_train, train_r2), (x_test, y_test, test_r2)):
            residual = np.mean((model.predict(x) - y[:, k]) ** 2)
            out.append(float(1.0 - residual / max(np.var(y[:, k]), 1e-12)))
    return importance, float(np.mean(train_r2)), float(np.mean(test_r2))


@metric(
    version="1",
    primary="disentanglement",
    cheap=False,
    fast=FAST,
    choices={"importance": ("gbt", "lasso")},
)
def dci(
    sim: Simulator,
    rep: Representation,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    importance: str = "gbt",
    n_estimators: int = 100,
    lasso_alpha: float = 0.02,
) -> dict[str, float]:
    """DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018)."""
    v_train, z_train = sample_codes(sim, rep, rng, num_train)
    v_test, z_test = sample_codes(sim, rep, rng, num_test)
    seed = int(rng.integers(2**31 - 1))
    if importance == "gbt":
        r, info_train, info_test = _gbt(z_train, v_train, z_test, v_test, n_estimators, seed)
    else:
        r, info_train, info_test = _lasso(z_train, v_train, z_test, v_test, lasso_alpha, seed)
    disentanglement, completeness = scores_from_importance(r)
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness_train": info_train,
        "informativeness_test": info_test,
    }
