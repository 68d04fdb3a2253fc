"""Downstream accuracy and sample efficiency of Locatello et al. (2019), "Challenging Common
Assumptions in the Unsupervised Learning of Disentangled Representations", ICML, Sec. 5.4
(disentanglement_lib's ``downstream_task``).

For each training size n in ``train_sizes`` (10, 100, 1,000, 10,000 labelled observations)
and each factor k, a classifier predicts v_k from the code; ``acc(n)`` is its test accuracy on
``num_test`` (5,000) observations, averaged over factors:

``{p}_accuracy_{n} = 1/K sum_k acc_k(n)``  for p in logreg, gbt (see ``_probes``);

``{p}_accuracy`` repeats it for the largest n (the headline, whatever the sizes), and

``{p}_sample_efficiency = acc(100) / acc(10,000)``

is the paper's sample efficiency: "the average accuracy based on 100 samples divided by the
average accuracy based on 10,000 samples" (numerator ``efficiency_size``, denominator the
largest size). A code at chance level at every size has efficiency about 1: read it next to
the accuracies. Each size draws its own training set; all sizes share one test set.

Cost: 100 rounds of gradient boosting on 10,000 points for factors with 32 and 40 classes
(one tree per class per round) and a 50-fit cross-validated logistic regression per factor
and size take minutes (about 6 min of CPU for a 10-dimensional code on the project's 2-core
machine), so the metric is not in the default suite (``cheap=False``). The fast preset stops
at 1,000 labels with 10 boosting rounds (about 5-10 s).
"""

from __future__ import annotations

import numpy as np

from dbench.contracts import Simulator
from dbench.errors import UserError
from dbench.metric_spec import metric
from dbench.metrics._probes import PREDICTORS, fit_classifier, single_threaded
from dbench.metrics._sampling import sample_codes
from dbench.representation import Representation

FAST = {"train_sizes": (10, 100, 1000), "num_test": 1000, "n_estimators": 10, "logreg_cs": 4}


def downstream_from_codes(
    train: dict[int, tuple[np.ndarray, np.ndarray]],
    test: tuple[np.ndarray, np.ndarray],
    *,
    efficiency_size: int = 100,
    n_estimators: int = 100,
    logreg_cs: int = 10,
    seed: int = 0,
) -> dict[str, float]:
    """Scores from training sets ``{n: (codes, factors)}`` and one test set ``(codes, factors)``."""
    z_test, v_test = test
    out: dict[str, float] = {}
    with single_threaded():
        for kind in PREDICTORS:
            accuracy = {}
            for n, (z, v) in sorted(train.items()):
                per_factor = []
                for k in range(v.shape[1]):
                    model = fit_classifier(
                        kind, z, v[:, k], seed=seed, n_estimators=n_estimators, logreg_cs=logreg_cs
                    )
                    per_factor.append(float(np.mean(model.predict(z_test) == v_test[:, k])))
                accuracy[n] = float(np.mean(per_factor))
                out[f"{kind}_accuracy_{n}"] = accuracy[n]
            largest = accuracy[max(accuracy)]
            out[f"{kind}_accuracy"] = largest
            out[f"{kind}_sample_efficiency"] = (
                accuracy[efficiency_size] / largest if largest > 0 else 0.0
            )
    return out


def _check_sizes(sim: Simulator, settings: dict) -> None:
    sizes = settings.get("train_sizes", FAST["train_sizes"] if settings.get("fast") else None)
    sizes = (10, 100, 1000, 10_000) if sizes is None else sizes
    if not sizes or not all(isinstance(n, int) and not isinstance(n, bool) for n in sizes):
        raise UserError(f"downstream: train_sizes must be a list of integers; got {sizes!r}")
    if min(sizes) < 2:
        raise UserError(f"downstream: every train size must be at least 2; got {sizes!r}")
    efficiency = settings.get("efficiency_size", 100)
    if efficiency not in sizes:
        raise UserError(
            f"downstream: efficiency_size {efficiency} must be one of train_sizes {list(sizes)}"
        )


@metric(version="1", primary="logreg_accuracy", cheap=False, fast=FAST, requires=_check_sizes)
def downstream(
    sim: Simulator,
    rep: Representation,
    rng: np.random.Generator,
    *,
    train_sizes: tuple[int, ...] = (10, 100, 1000, 10_000),
    num_test: int = 5_000,
    efficiency_size: int = 100,
    n_estimators: int = 100,
    logreg_cs: int = 10,
) -> dict[str, float]:
    """Downstream accuracy per training size and sample efficiency (Locatello et al. 2019)."""
    train = {}
    for n in sorted(set(train_sizes)):
        v, z = sample_codes(sim, rep, rng, n)
        train[n] = (z, v)
    v_test, z_test = sample_codes(sim, rep, rng, num_test)
    return downstream_from_codes(
        train,
        (z_test, v_test),
        efficiency_size=efficiency_size,
        n_estimators=n_estimators,
        logreg_cs=logreg_cs,
        seed=int(rng.integers(2**31 - 1)),
    )
