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
run by default; its fast preset uses fewer samples and rounds.

``importance="lgbm"``: the same model fitted by LightGBM (Ke et al. 2017, "LightGBM: A Highly
Efficient Gradient Boosting Decision Tree"): ``n_estimators`` rounds of softmax boosting,
learning rate 0.1, trees of depth 3 whose leaves may hold one sample, as scikit-learn's
defaults, with thresholds between every pair of distinct values as there (one histogram bin
per training code); the trees still differ, since LightGBM ranks splits by hessian-weighted
gain and scikit-learn by Friedman's MSE on the residuals. Importance is a dimension's total
split gain, normalised to sum 1 per factor as scikit-learn's importances are. In our
measurement it fitted 5-9 times faster; on ground-truth and rotated dSprites factors (2,000
codes, 100 rounds, 5 seeds) its disentanglement, completeness and test informativeness lay
within the exact backend's spread over seeds and its train informativeness 0.002 lower (at
the edge of that spread), and at 10 rounds the train informativeness was 0.03 higher
(benchmarks/README.md). It is a different protocol all the
same: recorded as its own setting, never substituted for ``"gbt"``. scikit-learn's
``HistGradientBoostingClassifier`` is not offered: its public API exposes no feature
importances, and permutation importance, the public substitute, measures something else (the
accuracy lost when a dimension is shuffled, not the dimension's part in the splits).

``importance="lasso"`` is the paper's linear option: ``Lasso(alpha)`` on standardised codes
and factor values, importance ``|W|``, informativeness the test R^2 (1 - NMSE, so higher
stays better).

The per-factor fits (trees only) run in parallel in worker processes, as many as the CPUs
:func:`cpu_budget` allows (at most one per factor). Each fit is independent and seeded
alike, so the scores are identical to fitting one factor after another; the worker count is
therefore not a setting and not part of the metric's protocol.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from dbench.contracts import Simulator
from dbench.metric_spec import metric
from dbench.metrics._sampling import sample_codes
from dbench.representation import Representation

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


def cpu_budget() -> int:
    """How many CPUs the per-factor fits may use.

    The CPUs this process may run on (its affinity mask, which ``taskset`` and container
    limits narrow), or ``OMP_NUM_THREADS`` when that is a smaller positive number. A sweep
    trial sets ``OMP_NUM_THREADS`` to its CPU allotment (``dbench.sweep.trial.pin_threads``;
    Ray sets it for its workers too), so a trial keeps to its share instead of taking the
    node. ``torch.get_num_threads()`` carries the same allotment in a trial but would import
    torch here and, outside a trial, counts physical cores rather than the allowed ones.
    ``OMP_NUM_THREADS=1`` fits the factors one after another (no worker processes), which is
    faster where the CPUs are already busy with other work.
    """
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks on this platform
        allowed = os.cpu_count() or 1
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return min(int(value), allowed)
    return allowed


def _classifier(importance: str, n_estimators: int, seed: int, threads: int, n_train: int):
    if importance == "gbt":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
    import lightgbm

    # GradientBoostingClassifier's defaults (learning rate 0.1, depth 3, leaves down to one
    # sample, no subsampling) in LightGBM; deterministic: the same trees for any thread count.
    # As many bins as training codes, one code allowed per bin: thresholds between every pair
    # of distinct values, as the exact trees search. With LightGBM's 255 bins of at least 3
    # codes, train informativeness on 2,000 rotated dSprites codes was 0.985 against the exact
    # backend's 0.995; with exact thresholds 0.993, for 1.7x the fit time (benchmarks/README).
    return lightgbm.LGBMClassifier(
        n_estimators=n_estimators,
        learning_rate=0.1,
        max_depth=3,
        num_leaves=8,
        min_child_samples=1,
        max_bin=max(255, n_train),
        min_data_in_bin=1,
        importance_type="gain",
        random_state=seed,
        n_jobs=threads,
        deterministic=True,
        force_col_wise=True,
        verbose=-1,
    )


def _fit_factor(importance, x_train, y_train, x_test, y_test, n_estimators, seed, threads):
    """One factor's (importance column, train accuracy, test accuracy)."""
    if len(np.unique(y_train)) < 2:
        # Nothing to classify (the factor never varied in the sample): no importance.
        return np.zeros(x_train.shape[1]), 1.0, float(np.mean(y_test == y_train[0]))
    model = _classifier(importance, n_estimators, seed, threads, len(x_train))
    model.fit(x_train, y_train)
    column = np.abs(np.asarray(model.feature_importances_, dtype=np.float64))
    if importance == "lgbm" and column.sum() > 0:
        column = column / column.sum()  # total gain -> shares, as scikit-learn's importances
    train_acc = float(np.mean(model.predict(x_train) == y_train))
    return column, train_acc, float(np.mean(model.predict(x_test) == y_test))


def _trees(importance, x_train, y_train, x_test, y_test, n_estimators, seed, n_jobs):
    """Per-factor tree ensembles, ``n_jobs`` factors at a time (``None``: :func:`cpu_budget`).

    Each fit is independent and seeded alike, so the result does not depend on ``n_jobs``.
    Factors with most classes (most trees) start first, so the slowest does not start last.
    """
    cpus = max(1, n_jobs or cpu_budget())
    k = y_train.shape[1]
    workers = max(1, min(cpus, k))
    threads = max(1, cpus // workers)  # each LightGBM fit's own threads (a share of the CPUs)
    args = [
        (importance, x_train, y_train[:, j], x_test, y_test[:, j], n_estimators, seed, threads)
        for j in range(k)
    ]
    if workers <= 1:
        results = [_fit_factor(*a) for a in args]
    else:
        from joblib import Parallel, delayed

        order = sorted(range(k), key=lambda j: -len(np.unique(y_train[:, j])))
        done = Parallel(n_jobs=workers, batch_size=1)(delayed(_fit_factor)(*args[j]) for j in order)
        results = [done[order.index(j)] for j in range(k)]
    matrix = np.stack([r[0] for r in results], axis=1)
    return matrix, float(np.mean([r[1] for r in results])), float(np.mean([r[2] for r in results]))


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


def dci_from_codes(
    v_train: np.ndarray,
    z_train: np.ndarray,
    v_test: np.ndarray,
    z_test: np.ndarray,
    seed: int,
    *,
    importance: str = "gbt",
    n_estimators: int = 100,
    lasso_alpha: float = 0.02,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """DCI's scores from sampled factors ``v`` (n, K) and codes ``z`` (n, D).

    ``n_jobs`` factors are fitted at a time (``None``: every CPU :func:`cpu_budget` allows);
    it changes no number, so it is not one of the metric's settings.
    """
    if importance == "lasso":
        r, info_train, info_test = _lasso(z_train, v_train, z_test, v_test, lasso_alpha, seed)
    else:
        r, info_train, info_test = _trees(
            importance, z_train, v_train, z_test, v_test, n_estimators, seed, n_jobs
        )
    disentanglement, completeness = scores_from_importance(r)
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness_train": info_train,
        "informativeness_test": info_test,
    }


@metric(
    version="1",
    primary="disentanglement",
    cheap=False,
    fast=FAST,
    choices={"importance": ("gbt", "lgbm", "lasso")},
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
    return dci_from_codes(
        v_train,
        z_train,
        v_test,
        z_test,
        seed,
        importance=importance,
        n_estimators=n_estimators,
        lasso_alpha=lasso_alpha,
    )
