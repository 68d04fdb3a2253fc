"""Bounds, hand-computed values and settings checks of the metrics that fit predictors on
codes: DCI-ES (explicitness and size), downstream accuracy / sample efficiency and fairness.

Bounds use representations built from dSprites' factors without rendering
(``tests/_representations.py``), each metric with its fast preset and the downstream task
lighter still; the hand-computed cases use the 2 x 2 table of
:data:`tests._representations.CODES` (described in ``tests/test_metrics_information.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from dbench.datasets.base import GridSimulator
from dbench.errors import UserError
from dbench.registry import METRICS
from dbench.representation import Representation
from dbench.testing.toy import DSpritesFactors
from tests._representations import (
    CHANCE,
    CODES,
    GRID,
    REPRESENTATIONS,
    Pass,
    assert_declares_its_scores,
    assert_one_pass,
    assert_rejected_before_drawing,
    score,
    score_table,
)

PROBES = ["dci_es", "downstream", "fairness"]

# Fast presets, and for the downstream task fewer sizes, rounds and Cs (its preset is ~8 s).
SETTINGS: dict[str, dict] = {m: {} for m in PROBES}
SETTINGS["downstream"] = {"train_sizes": (10, 100), "num_test": 500, "n_estimators": 5}
SETTINGS["downstream"]["logreg_cs"] = 2

NEEDED = {
    "dci_es": ["identity", "rotated", "duplicated", "noise", "constant"],
    "downstream": ["standardised", "rotated", "noise", "constant"],
    "fairness": ["identity", "rotated", "noise", "constant"],
}


@pytest.fixture(scope="module")
def passes() -> dict[str, Pass]:
    return {r: Pass(r) for r in REPRESENTATIONS}


@pytest.fixture(scope="module")
def scores(passes) -> dict[tuple[str, str], dict[str, float]]:
    return score_table(passes, NEEDED, SETTINGS)


def s(scores, metric: str, key: str) -> dict[str, float]:
    return {r: scores[(metric, r)][key] for r in NEEDED[metric]}


# -- declarations and settings ---------------------------------------------------------------


@pytest.mark.parametrize("name", PROBES)
def test_metric_declares_its_scores(scores, name):
    assert_declares_its_scores(scores, name, NEEDED)


@pytest.mark.parametrize(
    "name, settings, message",
    [
        ("dci_es", {"depths": (4, 2)}, "depths must be increasing"),
        ("dci_es", {"n_trees": 0}, "n_trees must be positive"),
        ("downstream", {"train_sizes": 100}, "train_sizes must be a list"),
        ("downstream", {"train_sizes": (10, 1000)}, "efficiency_size 100 must be one of"),
        ("downstream", {"train_sizes": (1, 100)}, "at least 2"),
        ("fairness", {"predictor": "svm"}, "predictor must be one of 'logreg', 'gbt'"),
        ("fairness", {"num_test_per_value": 0}, "num_test_per_value must be positive"),
    ],
)
def test_bad_settings_are_one_line_user_errors(name, settings, message):
    assert_rejected_before_drawing(name, settings, message)


def test_fairness_needs_two_factors():
    class OneFactor(GridSimulator):
        name = "one_factor"
        factor_names = ("x",)
        factor_sizes = (4,)

    with pytest.raises(UserError, match="needs two factors"):
        METRICS.get("fairness").check({}, OneFactor())


def test_metrics_share_one_representation_pass(scores, passes):
    """All three drew through one Representation per code (each observation encoded once),
    and DCI-ES scores the same on a pass of its own."""
    assert_one_pass(passes)
    own = Representation(DSpritesFactors(), REPRESENTATIONS["rotated"])
    assert score("dci_es", own) == scores[("dci_es", "rotated")]


# -- DCI-ES -------------------------------------------------------------------------------------


def test_dci_es_explicitness_from_curve():
    """Capacities 1, 2, 4 sit at 0, 0.5, 1 on the log axis; losses 0.5, 0.25, 0.3 become the
    running minimum 0.5, 0.25, 0.25; trapezoids 0.5 (0.5 + 0.25) / 2 + 0.5 (0.25 + 0.25) / 2
    = 0.3125; E = 1 - 0.3125 / 1 = 0.6875. A probe worse than the baseline counts as the
    baseline, so E never drops below 0."""
    from dbench.metrics.dci_es import explicitness_from_curve

    assert explicitness_from_curve([1, 2, 4], [0.5, 0.25, 0.3], 1.0) == pytest.approx(0.6875)
    assert explicitness_from_curve([1, 2, 4], [2.0, 1.5, 1.2], 1.0) == 0.0
    assert explicitness_from_curve([8], [0.25], 0.5) == pytest.approx(0.5)


def test_dci_es_hand_computed():
    """z1 = v1 and z2 > 0 iff v2 = 1: one split (depth 1) reads either factor exactly, so the
    loss is 0 at every capacity and E = 1; S = 2 factors / 3 dimensions."""
    from dbench.metrics.dci_es import dci_es_from_codes

    out = dci_es_from_codes(CODES, GRID, CODES, GRID, depths=(1, 2), n_trees=5)
    assert out == pytest.approx({"explicitness": 1.0, "size": 2 / 3, "informativeness": 1.0})


def test_dci_es_bounds(scores):
    e, size = s(scores, "dci_es", "explicitness"), s(scores, "dci_es", "size")
    info = s(scores, "dci_es", "informativeness")
    assert e["identity"] >= 0.9 and info["identity"] >= 0.98 and size["identity"] == 1.0
    assert e["rotated"] <= e["identity"] - 0.1 and info["rotated"] >= 0.9  # needs more depth
    assert e["duplicated"] >= 0.9 and size["duplicated"] == 0.5
    assert e["noise"] <= 0.02 and e["constant"] <= 0.01 and size["noise"] == 0.5


# -- downstream ---------------------------------------------------------------------------------


def test_downstream_hand_computed():
    """Test set: the grid with codes (v1, v2, 0). With 10 labels all of one combination (0, 0)
    each classifier can only predict 0: accuracy 0.5 per factor, mean 0.5. With 100 labels on
    the grid both factors are read exactly: 1. Sample efficiency (10 over 100) 0.5 / 1."""
    from dbench.metrics.downstream import downstream_from_codes

    codes = np.column_stack([GRID, np.zeros(len(GRID))]).astype(np.float64)
    train = {10: (np.zeros((10, 3)), np.zeros((10, 2), dtype=int)), 100: (codes, GRID)}
    out = downstream_from_codes(train, (codes, GRID), efficiency_size=10, n_estimators=10)
    for p in ("logreg", "gbt"):
        assert out[f"{p}_accuracy_10"] == 0.5 and out[f"{p}_accuracy_100"] == 1.0
        assert out[f"{p}_accuracy"] == 1.0 and out[f"{p}_sample_efficiency"] == 0.5


def test_downstream_bounds(scores):
    logreg, gbt = (
        s(scores, "downstream", "logreg_accuracy"),
        s(scores, "downstream", "gbt_accuracy"),
    )
    assert logreg["standardised"] >= CHANCE + 0.25 and gbt["standardised"] >= 0.7
    # Logistic regression is blind to a rotation; axis-aligned trees are not.
    assert logreg["rotated"] == pytest.approx(logreg["standardised"], abs=0.05)
    assert gbt["rotated"] <= gbt["standardised"] - 0.3
    for r in ("noise", "constant"):
        assert logreg[r] <= CHANCE + 0.03 and gbt[r] <= CHANCE + 0.03
    small = s(scores, "downstream", "gbt_accuracy_10")
    assert small["standardised"] < gbt["standardised"]  # more labels help a good code
    efficiency = s(scores, "downstream", "gbt_sample_efficiency")
    assert efficiency["standardised"] == 1.0  # the largest size here is the 100 labels
    assert efficiency["constant"] == 1.0


# -- fairness -----------------------------------------------------------------------------------


def test_demographic_parity_hand_computed():
    """Rows: predictions with s set to each value. (0,0,0,0) and (0,0,1,1) pool to (3/4, 1/4):
    TV 1/4 each. (0,0), (0,1), (1,1) pool to (1/2, 1/2): TV 1/2, 0, 1/2, mean 1/3."""
    from dbench.metrics.fairness import demographic_parity

    assert demographic_parity(np.array([[0, 0, 0, 0], [0, 0, 1, 1]])) == pytest.approx((0.25, 0.25))
    assert demographic_parity(np.array([[0, 0], [0, 1], [1, 1]])) == pytest.approx((1 / 3, 0.5))


def test_fairness_hand_computed():
    """Code z = (v1 AND v2, 0, 0). For target v1 the best rule is yhat = z1 (z1 = 0 leaves
    v1 = 1 with chance 1/3), i.e. yhat = v1 v2. Setting v2 = 0 makes every prediction 0;
    setting v2 = 1 gives yhat = v1, half ones on the grid; pooled (3/4, 1/4): TV 1/4 for both
    values, and by symmetry the same for target v2: unfairness 0.25 (mean and max). The rule
    is right on 3 of 4 grid points: target accuracy 0.75."""
    from dbench.metrics.fairness import fairness_from_codes

    def encode(v):
        return np.column_stack([v[:, 0] * v[:, 1], np.zeros((len(v), 2))]).astype(np.float64)

    out = fairness_from_codes(encode(GRID), GRID, GRID, encode, (2, 2), n_estimators=10)
    assert out == pytest.approx({"unfairness": 0.25, "unfairness_max": 0.25,
                                 "target_accuracy": 0.75})  # fmt: skip


def test_fairness_bounds(scores):
    u, top = s(scores, "fairness", "unfairness"), s(scores, "fairness", "unfairness_max")
    acc = s(scores, "fairness", "target_accuracy")
    # Factors are independent, so reading the true factor is fair; only mixing leaks s.
    assert u["identity"] <= 0.01 and top["identity"] <= 0.02 and acc["identity"] >= 0.98
    assert u["rotated"] >= 0.1 and top["rotated"] >= u["rotated"]
    assert u["constant"] == 0.0 and top["constant"] == 0.0  # fair, and useless:
    assert acc["constant"] <= CHANCE + 0.03
    # Noise is not fair here: its predictions change haphazardly with every intervention,
    # which 50 points per value show as a finite-sample distance.
    assert u["noise"] >= 0.1 and acc["noise"] <= CHANCE + 0.05
