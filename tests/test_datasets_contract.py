"""The Simulator contract, checked on every registered dataset (built-ins and plugins alike).

A new dataset gets these tests for free (DESIGN.md, convention 6): shapes, dtype, value range,
factor bounds, determinism under a seed, Sim(v, w) reproducible for a fixed w, and a
``describe()`` that says where the images came from. Sizes are tiny so the whole file runs in
seconds even with procedural renderers on a CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dbench.contracts import Simulator
from dbench.engine.resolve import make_dataset
from dbench.registry import DATASETS

N = 4


@pytest.fixture(scope="module", params=DATASETS.names())
def sim(request, tmp_path_factory):
    # Module scope: renderers keep per-instance state (e.g. head SDF volumes) worth reusing.
    return make_dataset(request.param, {}, str(tmp_path_factory.mktemp("data")))


def test_protocol_and_declared_shape(sim):
    assert isinstance(sim, Simulator)
    assert len(sim.factor_names) == len(sim.factor_sizes) > 0
    assert all(int(s) >= 1 for s in sim.factor_sizes)
    assert len(sim.observation_shape) == 3


def test_sample_factors_in_bounds_and_seeded(sim):
    v = sim.sample_factors(50, np.random.default_rng(1))
    assert v.shape == (50, len(sim.factor_sizes))
    assert np.issubdtype(v.dtype, np.integer)
    assert (v >= 0).all() and (v < np.asarray(sim.factor_sizes)).all()
    assert np.array_equal(v, sim.sample_factors(50, np.random.default_rng(1)))


def test_nuisance_declared_and_seeded(sim):
    w = sim.sample_nuisance(N, np.random.default_rng(2))
    if not getattr(sim, "has_nuisance", False):
        assert w is None
        return
    assert w is not None and len(w) == N
    assert np.array_equal(w, sim.sample_nuisance(N, np.random.default_rng(2)))


def test_images_shape_dtype_range_and_reproducible(sim):
    rng = np.random.default_rng(3)
    v = sim.sample_factors(N, rng)
    w = sim.sample_nuisance(N, rng)
    x = sim.sim(v, w)
    assert isinstance(x, torch.Tensor)
    assert tuple(x.shape) == (N, *sim.observation_shape)
    assert x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert torch.equal(x, sim.sim(v, w)), "same v and w must give the same image"
    if getattr(sim, "binary", False):
        assert set(torch.unique(x).tolist()) <= {0.0, 1.0}


def test_nuisance_is_used(sim):
    if not getattr(sim, "has_nuisance", False):
        pytest.skip("no nuisance factor")
    v = np.repeat(sim.sample_factors(1, np.random.default_rng(4)), 2, axis=0)
    w = sim.sample_nuisance(2, np.random.default_rng(5))
    x = sim.sim(v, w)
    assert not torch.equal(x[0], x[1]), "Sim(v, w) must depend on w"


def test_describe_has_source_and_checksum(sim):
    info = sim.describe()
    assert info.get("source")
    assert info.get("checksum")


def test_index_round_trip_on_grids(sim):
    if not hasattr(sim, "index_of"):
        pytest.skip("not a grid simulator")
    v = sim.sample_factors(20, np.random.default_rng(6))
    assert np.array_equal(sim.factors_of(sim.index_of(v)), v)
