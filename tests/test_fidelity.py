"""Fidelity to the papers and their reference code (issue 30): DCI-ES's two protocols, fairness
at the paper's training size, and the normalisers and counts where dbench departs from a
reference implementation on purpose. Every expected number is worked out by hand below."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dbench.errors import UserError
from dbench.metrics import dci_es as dci_es_module
from dbench.metrics.dci_es import dci_es_from_codes, explicitness_from_curve
from dbench.metrics.irs import irs_from_codes
from dbench.metrics.mig_sup import mig_sup_from_mi
from dbench.registry import METRICS
from dbench.reporting.identity import protocol, protocol_text
from dbench.representation import Representation
from dbench.testing.toy import DSpritesFactors

DEPTHS = (1, 2, 4, 8, 16)


def record(metric: str, version: str, settings: dict) -> dict:
    """The parts of a run record that a score's protocol is read from."""
    return {
        "config": {"metric_kwargs": {}},
        "scores": {metric: {}},
        "metrics": {metric: {"version": version, "settings": settings}},
    }


# -- DCI-ES: the paper's definition (dbench's scale) and the authors' computation --------------
def test_flat_curve_scores_0_on_the_paper_protocol_and_1_on_the_authors():
    """Pure noise: no probe beats the baseline, every loss equals it (1). Paper: the area under
    the curve over [0, 1] is 1 * 1, so E = 1 - 1 / 1 = 0. Authors: the curve minus its own
    minimum is 0 everywhere, the area 0, so E = 1 - 2 * 0 / (15 * 1) = 1."""
    flat = [1.0] * len(DEPTHS)
    assert explicitness_from_curve(DEPTHS, flat, 1.0) == pytest.approx(0.0)
    assert explicitness_from_curve(DEPTHS, flat, 1.0, "paper") == pytest.approx(0.0)
    assert explicitness_from_curve(DEPTHS, flat, 1.0, "authors") == pytest.approx(1.0)


def test_a_falling_curve_on_both_protocols():
    """Depths 1, 2, 4 with losses .5, .25, .25 and baseline 1.
    Paper: positions log2 -> 0, 1, 2, rescaled 0, .5, 1; trapezoids (.5 + .25) / 2 * .5 and
    (.25 + .25) / 2 * .5, so E = 1 - (0.1875 + 0.125) = 0.6875.
    Authors: raw depths; the curve minus its minimum .25 is .25, 0, 0; trapezoids
    (.25 + 0) / 2 * (2 - 1) and 0, so E = 1 - 2 * 0.125 / ((4 - 1) * 1) = 1 - 1/12."""
    depths, losses = (1, 2, 4), (0.5, 0.25, 0.25)
    paper = 1 - ((0.5 + 0.25) / 2 * 0.5 + (0.25 + 0.25) / 2 * 0.5)
    authors = 1 - 2 * ((0.25 + 0) / 2 * (2 - 1)) / ((4 - 1) * 1)
    assert explicitness_from_curve(depths, losses, 1.0, "paper") == pytest.approx(paper)
    assert explicitness_from_curve(depths, losses, 1.0, "authors") == pytest.approx(authors)


def test_losses_above_the_baseline_and_a_rising_curve():
    """Losses 1.5, .5, .8 at depths 1, 2, 4, baseline 1. Both take the running minimum
    (1.5, .5, .5): the deeper forest that overfits counts as the best shallower one.
    Paper caps at the baseline: (1, .5, .5) at 0, .5, 1, area (1 + .5) / 2 * .5 +
    (.5 + .5) / 2 * .5 = .625, E = .375. Authors do not cap: minus the minimum (1, 0, 0) at
    1, 2, 4, area (1 + 0) / 2 * 1 = .5, E = 1 - 2 * .5 / (3 * 1) = 2/3."""
    depths, losses = (1, 2, 4), (1.5, 0.5, 0.8)
    paper = 1 - ((1 + 0.5) / 2 * 0.5 + (0.5 + 0.5) / 2 * 0.5)
    authors = 1 - 2 * ((1 + 0) / 2 * 1) / (3 * 1)
    assert explicitness_from_curve(depths, losses, 1.0, "paper") == pytest.approx(paper)
    assert explicitness_from_curve(depths, losses, 1.0, "authors") == pytest.approx(authors)


def test_explicitness_refuses_an_unknown_protocol_and_one_depth_for_the_authors():
    with pytest.raises(ValueError, match="protocol must be one of"):
        explicitness_from_curve(DEPTHS, [1.0] * 5, 1.0, "triangle")
    with pytest.raises(ValueError, match="two capacities"):
        explicitness_from_curve((8,), (0.5,), 1.0, "authors")
    # One depth is fine on the paper's protocol: E = 1 - .25 / .5.
    assert explicitness_from_curve((8,), (0.25,), 0.5) == pytest.approx(1 - 0.25 / 0.5)


@pytest.fixture
def flat_forests(monkeypatch):
    """Forests that never beat the baseline: every depth's test loss is the squared error of
    predicting the training mean (0 after standardising), mean(y_test ** 2)."""

    def losses(z_train, y_train, z_test, y_test, depths, n_trees, seed):
        return np.full(len(depths), float(np.mean(y_test**2)))

    monkeypatch.setattr(dci_es_module, "_forest_losses", losses)


def test_the_protocol_setting_reaches_the_curve(flat_forests):
    """Through ``dci_es_from_codes`` and through the registered metric (settings checked,
    codes sampled): flat curves, so E is 0 on the paper's protocol and 1 on the authors'."""
    rng = np.random.default_rng(0)
    v = rng.integers(0, 4, size=(200, 2))
    z = rng.normal(size=(200, 3))
    for proto, expected in (("paper", 0.0), ("authors", 1.0)):
        out = dci_es_from_codes(z, v, z, v, depths=DEPTHS, protocol=proto)
        assert out["explicitness"] == pytest.approx(expected)
    sim = DSpritesFactors()
    rep = Representation(sim, lambda obs: np.asarray(obs.factors, dtype=np.float64))
    spec = METRICS.get("dci_es")
    for proto, expected in (("paper", 0.0), ("authors", 1.0)):
        settings = {"num_train": 300, "num_test": 200, "protocol": proto}
        out = spec(sim, rep, np.random.default_rng(0), **settings)
        assert out["explicitness"] == pytest.approx(expected)
    assert spec(sim, rep, np.random.default_rng(0), num_train=300, num_test=200)[
        "explicitness"
    ] == pytest.approx(0.0)  # the default is the paper's protocol


def test_dci_es_protocol_is_a_declared_choice():
    spec = METRICS.get("dci_es")
    assert spec.defaults()["protocol"] == "paper"
    assert tuple(spec.choices["protocol"]) == ("paper", "authors")
    with pytest.raises(UserError, match="protocol must be one of 'paper', 'authors'"):
        spec.check({"protocol": "triangle"})
    with pytest.raises(UserError, match="protocol 'authors' needs two depths"):
        spec.check({"protocol": "authors", "depths": [8]}, DSpritesFactors())
    spec.check({"depths": [8]}, DSpritesFactors())  # one depth: fine on the paper's protocol


def test_records_without_the_protocol_setting_keep_their_protocol():
    """Scores written before ``protocol`` existed computed the paper's protocol: their
    settings, with today's defaults filled in, equal a new default score's, and only an
    ``authors`` score differs (and says so)."""
    old = protocol(record("dci_es", "1", {}))
    new = protocol(record("dci_es", "1", {"protocol": "paper"}))
    authors = protocol(record("dci_es", "1", {"protocol": "authors"}))
    assert old == new and old["dci_es"]["settings"]["protocol"] == "paper"
    assert authors != old
    assert protocol_text(json.dumps(old)) == "dci_es v1"
    assert protocol_text(json.dumps(authors)) == "dci_es v1 (protocol=authors)"


# -- fairness: the paper's 10,000 training points ----------------------------------------------
def test_fairness_trains_on_the_papers_10000_points_and_fast_on_500():
    spec = METRICS.get("fairness")
    assert spec.defaults()["num_train"] == 10_000
    assert spec.resolved({})["num_train"] == 10_000
    assert spec.resolved({"fast": True})["num_train"] == 500
    assert spec.resolved({"fast": True, "num_train": 1000})["num_train"] == 1000


def test_fairness_scores_from_the_1000_point_default_stay_apart():
    """A version-1 score with no ``num_train`` ran on 1,000 points; the version bump keeps it
    from averaging with a version-2 default score, which ran on 10,000."""
    spec = METRICS.get("fairness")
    assert spec.version == "2"
    v1 = protocol(record("fairness", "1", {}))
    v2 = protocol(record("fairness", "2", {}))
    assert v1 != v2
    assert v2 == protocol(record("fairness", "2", {"num_train": 10_000}))


# -- MIG-sup normalises by the factor's entropy; IRS counts active dimensions -----------------
def test_mig_sup_divides_by_the_factors_entropy():
    """One code dimension with MI 1 and .25 nats about two factors of entropy 2 and 1:
    normalised .5 and .25, gap .25. (Over the code's entropy, say 1.5, the gap would be
    (1 - .25) / 1.5 = .5: the paper's normaliser is the factor's.)"""
    mi = np.array([[1.0, 0.25]])
    entropy = np.array([2.0, 1.0])
    assert mig_sup_from_mi(mi, entropy) == pytest.approx(1.0 / 2.0 - 0.25 / 1.0)


def test_irs_num_active_dims_is_a_count():
    """Two varying dimensions with values in the hundreds and one constant dimension: two
    active dimensions (the sum of the active codes' values would be in the hundreds of
    thousands)."""
    rng = np.random.default_rng(0)
    v = rng.integers(0, 5, size=(1000, 2))
    z = np.column_stack([100.0 + v[:, 0], 300.0 + v[:, 1], np.full(1000, 7.0)])
    _, active = irs_from_codes(z, v)
    assert active == 2
