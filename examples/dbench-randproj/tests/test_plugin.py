"""The plugin's components pass dbench's contract checks (``dbench.testing``).

This is all a plugin author needs: the same checks dbench runs on its own datasets, models and
metrics, each failure naming the component and the check.
"""

from __future__ import annotations

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
