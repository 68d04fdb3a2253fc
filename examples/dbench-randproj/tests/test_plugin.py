"""The plugin's components pass dbench's contract checks (``dbench.testing``).

This is all a plugin author needs: the same checks dbench runs on its own datasets, models and
metrics, each failure naming the component and the check.
"""

from __future__ import annotations

import numpy as np
import pytest
from dbench_randproj import CrossBars, RandomProjection, active_dims

from dbench.testing import assert_passed, check_dataset, check_metric, check_model, run_checks


def test_crossbars_is_a_simulator():
    results = assert_passed(check_dataset(CrossBars()))
    assert {r.name for r in results if not r.skipped} >= {"sim", "finite_grid", "describe"}


def test_randproj_is_a_model():
    assert_passed(check_model(RandomProjection, CrossBars(), model_kwargs={"n_components": 4}))


def test_randproj_on_the_default_toy_data():
    assert_passed(check_model(RandomProjection))


def test_active_dims_is_a_metric():
    assert_passed(check_metric(active_dims, CrossBars()))


def test_registered_through_entry_points():
    from dbench.registry import DATASETS, METRICS, MODELS

    if "crossbars" not in DATASETS.names():
        pytest.skip("dbench-randproj is not installed (pip install examples/dbench-randproj)")
    assert "randproj" in MODELS.names() and "active_dims" in METRICS.names()
    assert DATASETS.entry("crossbars").origin == "dbench-randproj (plugin)"
    for kind, name in [("dataset", "crossbars"), ("model", "randproj"), ("metric", "active_dims")]:
        assert_passed(run_checks(kind, name))


def _code(sim, columns):
    """A representation whose columns are functions of (factors, fresh noise)."""
    from dbench.representation import Representation

    rng = np.random.default_rng(1)

    def encode(obs):
        factors = np.asarray(obs.factors, dtype=np.float64)
        noise = rng.standard_normal((len(obs), 1))
        return np.column_stack([column(factors, noise) for column in columns])

    return Representation(sim, encode, cache=False)


def test_active_dims_counts_the_dimensions_that_follow_the_observation():
    # The contract check compares the factors with noise; this one pins the count itself: a
    # version that counts raw variance (noise included) or inverts the comparison fails it.
    sim = CrossBars()
    code = _code(
        sim,
        [
            lambda f, e: f[:, 0],  # follows the row: active
            lambda f, e: f[:, 1] + 0.1 * e[:, 0],  # the column, a little noise: active
            lambda f, e: 5.0 * e[:, 0],  # varies, but none of it repeats: inactive
            lambda f, e: np.full(len(f), 3.0),  # constant: inactive
            lambda f, e: 0.01 * f[:, 2],  # follows thickness, variance below 0.01: inactive
        ],
    )
    scores = active_dims(sim, code, np.random.default_rng(0))
    assert scores == {"active_dims": 2.0}
