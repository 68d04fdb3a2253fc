"""The disentanglement metric of Higgins et al. (2017), "beta-VAE", Sec. 3 ("BetaVAE score").

For each point: pick a factor y uniformly; draw L pairs of factor vectors that agree on y and
are free elsewhere; ``z_diff`` is the mean over pairs of ``|z(x1) - z(x2)|`` (mean
representation). A linear classifier predicts y from ``z_diff``; the score is its accuracy on
held-out points. Defaults follow disentanglement_lib (L = 64, 10,000 train and 5,000 eval
points, scikit-learn ``LogisticRegression`` with default settings and no feature scaling).

Two protocol settings expose the classifier, because it decides some scores: ``scale``
standardises the z_diff features (mean and std fitted on the training points) and ``C`` is the
logistic regression's inverse regularisation. With the defaults (``scale=False, C=1.0``) an
untrained VAE, whose encoder means vary by ~4e-4 per dimension, sits at chance (1/5 on
dSprites): the default regularisation on unscaled inputs cannot use differences that small.
Standardised, the same representation scores far above chance, while trained models barely
move (``benchmarks/metric_sensitivity.py`` measures both). Higgins et al. (2017) do not state
their classifier's regularisation or scaling; their Table 1 has the untrained VAE at 44.14%.
"""

from __future__ import annotations

import warnings

import numpy as np

from dbench.contracts import SharesFactors, Simulator
from dbench.errors import UserError
from dbench.metric_spec import metric
from dbench.representation import Representation

FAST = {"num_train": 500, "num_eval": 300}

# Points per chunk: bounds memory for wide representations (raw pixels: 4096 floats each).
_CHUNK_POINTS = 128


def _z_diffs(
    sim: Simulator,
    rep: Representation,
    rng: np.random.Generator,
    n_points: int,
    batch_size: int,
    factors: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(n_points, D) mean absolute pair differences and the fixed factor of each point."""
    y = rng.choice(factors, size=n_points)
    diffs = []
    for start in range(0, n_points, _CHUNK_POINTS):
        y_chunk = y[start : start + _CHUNK_POINTS]
        fixed = np.repeat(y_chunk, batch_size)
        v1 = sim.sample_factors(len(fixed), rng)
        rows = np.arange(len(fixed))
        if isinstance(sim, SharesFactors):  # labelled data: draw rows that share the value
            v2 = sim.sample_sharing(fixed, v1[rows, fixed], rng)
        else:
            v2 = sim.sample_factors(len(fixed), rng)
            v2[rows, fixed] = v1[rows, fixed]
        z1, z2 = rep(v1, rng), rep(v2, rng)
        d = np.abs(z1 - z2).reshape(len(y_chunk), batch_size, -1).mean(axis=1)
        diffs.append(d)
    return np.concatenate(diffs), y


def _kept_factors(sim: Simulator, settings: dict) -> None:
    """The data check: excluded factors exist and at least two factors remain to classify."""
    exclude = settings.get("exclude_factors", ())
    unknown = set(exclude) - set(sim.factor_names)
    if unknown:
        raise UserError(
            f"higgins: unknown factors to exclude: {sorted(unknown)} "
            f"(dataset {sim.name!r} has {list(sim.factor_names)})"
        )
    if len(set(sim.factor_names) - set(exclude)) < 2:
        raise UserError("higgins: at least two factors must remain after exclusion")


def _has_shape(sim: Simulator, settings: dict) -> None:
    if "shape" not in sim.factor_names:
        raise UserError(f"higgins_noshape: dataset {sim.name!r} has no factor named 'shape'")


def _higgins(sim, rep, rng, batch_size, num_train, num_eval, exclude_factors, scale, C):
    factors = np.array([i for i, n in enumerate(sim.factor_names) if n not in exclude_factors])
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x_train, y_train = _z_diffs(sim, rep, rng, num_train, batch_size, factors)
    x_eval, y_eval = _z_diffs(sim, rep, rng, num_eval, batch_size, factors)
    if scale:  # fitted on the training points only, applied to both
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x_train)
        x_train, x_eval = scaler.transform(x_train), scaler.transform(x_eval)
    classifier = LogisticRegression(C=C, random_state=int(rng.integers(2**31 - 1)))
    with warnings.catch_warnings():
        # Default settings are part of the protocol; lbfgs often stops at max_iter there.
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(x_train, y_train)
    return {
        "train_accuracy": float(classifier.score(x_train, y_train)),
        "eval_accuracy": float(classifier.score(x_eval, y_eval)),
    }


@metric(version="1", primary="eval_accuracy", fast=FAST, requires=_kept_factors)
def higgins(
    sim: Simulator,
    rep: Representation,
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    exclude_factors: tuple[str, ...] | list[str] = (),
    scale: bool = False,
    C: float = 1.0,
) -> dict[str, float]:
    """Train/eval accuracy of the Higgins et al. 2017 classifier. Chance is 1/#factors.

    ``exclude_factors`` drops factors from the choice of y (Higgins et al. left out shape);
    ``scale`` and ``C`` set the classifier (see the module docstring).
    """
    exclude = tuple(exclude_factors)
    return _higgins(sim, rep, rng, batch_size, num_train, num_eval, exclude, scale, C)


@metric(version="1", primary="eval_accuracy", cheap=False, fast=FAST, requires=_has_shape)
def higgins_noshape(
    sim: Simulator,
    rep: Representation,
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    scale: bool = False,
    C: float = 1.0,
) -> dict[str, float]:
    """:func:`higgins` with the ``shape`` factor left out of the choice of y.

    Higgins et al. (2017) leave shape out on dSprites; this name makes that variant a metric of
    its own (own rng stream, own column in the leaderboard). Chance is 1/4 on dSprites.
    """
    return _higgins(sim, rep, rng, batch_size, num_train, num_eval, ("shape",), scale, C)
