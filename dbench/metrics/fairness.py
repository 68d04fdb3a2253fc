"""Demographic-parity unfairness of Locatello et al. (2019), "On the Fairness of Disentangled
Representations", NeurIPS, Sec. 4 (disentanglement_lib's ``fairness`` task).

For a target factor y (predicted from the code by a classifier trained on ``num_train``
observations) and a different, sensitive factor s, the unfairness of the prediction is the
mean total-variation distance between the distribution of predictions and the distribution of
predictions when s is set by intervention:

``U(y, s) = 1/|S| sum_s TV(P(yhat), P(yhat | do(s)))``,  ``TV(p, q) = 1/2 sum_c |p_c - q_c|``.

As in the paper, ``P(yhat | do(s))`` is estimated on one sample of ``num_test_per_value``
(100) factor vectors in which s is overwritten by each of its values in turn (the same other
factors every time, so only s changes), and ``P(yhat)`` pools all those predictions. Scores,
over the ordered pairs (y, s), y != s:

- ``unfairness`` (headline): the mean of ``U(y, s)``, the paper's
  ``mean_fairness:mean_pred:mean_sens``; **lower is better**;
- ``unfairness_max``: the largest ``U(y, s)``; **lower is better**;
- ``target_accuracy``: the classifiers' mean accuracy on the unintervened sample, since a
  classifier that ignores the code (a constant one) is perfectly fair and useless.

Any classifier reading a factor that is independent of s is fair, so the ground truth scores
about 0; what raises ``U`` is a code that mixes y with s. A code of pure noise is not at 0: its
predictions change haphazardly whenever s changes the observation, and 100 points per value
show that as a finite-sample distance. The classifier is gradient-boosted trees (default
``predictor="gbt"``, as the paper) or the cross-validated logistic regression (``"logreg"``);
see ``_probes``.

Training size: the fairness study trains each classifier on ``num_train`` = 10,000 points, and
so does dbench's default since version 2. Version 1 defaulted to 1,000: a version-1 score whose
settings give no ``num_train`` was computed on 1,000 points (its record's resolved settings say
so). A leaderboard fills today's defaults into the settings it reads, so it shows such a score
as ``fairness v1`` with 10,000 filled in; the version keeps it from averaging with version-2
scores. Boosting scales about linearly in the points (one 6-class classifier on a
10-dimensional code: 1.5 s on 1,000, 16.5 s on 10,000, on the project's 2-core machine), so the
paper's setting costs about ten times the old default: minutes for a 10-dimensional code, where
1,000 points took about 30 s, and the metric is not in the default suite (``cheap=False``). The
``fast`` preset trains on 500 points, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dbench.contracts import Simulator
from dbench.errors import UserError
from dbench.metric_spec import metric
from dbench.metrics._probes import PREDICTORS, fit_classifier, single_threaded
from dbench.metrics._sampling import CHUNK, sample_codes
from dbench.representation import Representation

FAST = {"num_train": 500, "num_test_per_value": 50, "n_estimators": 10}


def demographic_parity(predictions: np.ndarray) -> tuple[float, float]:
    """(mean, max) over sensitive values of ``TV(P(yhat), P(yhat | do(s)))``.

    ``predictions`` is (|S|, n): row s holds the predicted classes with s set to its s-th value.
    """
    predictions = np.asarray(predictions)
    classes, labels = np.unique(predictions, return_inverse=True)
    labels = labels.reshape(predictions.shape)
    counts = np.stack([np.bincount(row, minlength=len(classes)) for row in labels])
    conditional = counts / counts.sum(axis=1, keepdims=True)  # P(yhat | do(s)), (|S|, C)
    pooled = counts.sum(axis=0) / counts.sum()  # P(yhat)
    tv = 0.5 * np.abs(conditional - pooled).sum(axis=1)
    return float(tv.mean()), float(tv.max())


def fairness_from_codes(
    z_train: np.ndarray,
    v_train: np.ndarray,
    v_test: np.ndarray,
    encode: Callable[[np.ndarray], np.ndarray],
    factor_sizes: Sequence[int],
    *,
    predictor: str = "gbt",
    n_estimators: int = 100,
    seed: int = 0,
) -> dict[str, float]:
    """Unfairness scores of classifiers trained on ``(z_train, v_train)``.

    ``v_test`` is the sample whose sensitive factor is overwritten; ``encode(v)`` gives the
    codes of factor vectors ``v`` (the representation).
    """
    k = v_train.shape[1]
    with single_threaded():
        models = [
            fit_classifier(predictor, z_train, v_train[:, i], seed=seed, n_estimators=n_estimators)
            for i in range(k)
        ]
        z_test = encode(v_test)
        accuracy = [float(np.mean(m.predict(z_test) == v_test[:, i])) for i, m in enumerate(models)]
        unfair = []
        # Values of the sensitive factor per encode call: at most CHUNK codes held at once.
        per_call = max(1, CHUNK // max(len(v_test), 1))
        for sensitive in range(k):
            targets = [t for t in range(k) if t != sensitive]
            predictions = {t: [] for t in targets}  # target -> (values, n) predictions
            for start in range(0, factor_sizes[sensitive], per_call):
                values = np.arange(start, min(start + per_call, factor_sizes[sensitive]))
                v = np.repeat(v_test[None], len(values), axis=0)  # (values, n, K)
                v[:, :, sensitive] = values[:, None]
                z = encode(v.reshape(-1, k))
                for t in targets:
                    predictions[t].append(models[t].predict(z).reshape(len(values), -1))
            for t in targets:
                unfair.append(demographic_parity(np.concatenate(predictions[t]))[0])
    return {
        "unfairness": float(np.mean(unfair)),
        "unfairness_max": float(np.max(unfair)),
        "target_accuracy": float(np.mean(accuracy)),
    }


def _two_factors(sim: Simulator, settings: dict) -> None:
    if len(sim.factor_sizes) < 2:
        raise UserError(
            f"fairness: needs two factors (a target and a sensitive one); dataset {sim.name!r} "
            f"has {len(sim.factor_sizes)}"
        )


@metric(
    version="2",  # 2: num_train defaults to the paper's 10,000 (1,000 in version 1)
    primary="unfairness",
    lower_is_better=("unfairness", "unfairness_max"),
    cheap=False,
    fast=FAST,
    choices={"predictor": PREDICTORS},
    requires=_two_factors,
)
def fairness(
    sim: Simulator,
    rep: Representation,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_test_per_value: int = 100,
    predictor: str = "gbt",
    n_estimators: int = 100,
) -> dict[str, float]:
    """Demographic-parity unfairness (Locatello et al. 2019b, Sec. 4), mean and max over
    (target, sensitive) factor pairs; classifiers trained on 10,000 points, as the paper."""
    v_train, z_train = sample_codes(sim, rep, rng, num_train)
    v_test = sim.sample_factors(num_test_per_value, rng)
    seed = int(rng.integers(2**31 - 1))
    return fairness_from_codes(
        z_train,
        v_train,
        v_test,
        lambda v: rep(v, rng),
        sim.factor_sizes,
        predictor=predictor,
        n_estimators=n_estimators,
        seed=seed,
    )
