"""Shared fixtures: isolated data/results roots and small, fast run settings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dbench.datasets.base import GridSimulator

# Small metric settings: enough points for stable scores on the oracle, seconds to compute.
FAST_HIGGINS = {"num_train": 300, "num_eval": 200, "batch_size": 16}


@pytest.fixture(autouse=True)
def _isolated_roots(tmp_path_factory, monkeypatch):
    """Never read or write the user's ./datasets or ./results from a test."""
    monkeypatch.setenv("DBENCH_RESULTS", str(tmp_path_factory.mktemp("results")))
    monkeypatch.setenv(
        "DBENCH_DATA", os.environ.get("DBENCH_TEST_DATA") or str(tmp_path_factory.mktemp("data"))
    )
    monkeypatch.setenv("DBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))  # auto's timing
    # Tests train in fp32 unless they ask otherwise: `auto` times bf16 against fp32 on the
    # machine, so its choice (and a run's id) would depend on the CPU and its load. Tests of
    # `auto` itself remove this (tests/test_precision.py).
    monkeypatch.setenv("DBENCH_PRECISION", "fp32")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path_factory.mktemp("mpl")))


@pytest.fixture
def one_thread():
    """Tiny nets: one thread is ten times faster than two fighting over busy cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ToyBars(GridSimulator):
    """A tiny binary simulator for core tests: a bar whose row and length are the factors."""

    name = "toybars"
    factor_names = ("row", "length")
    factor_sizes = (8, 6)
    observation_shape = (1, 16, 16)
    binary = True

    def sim(self, v, w=None):
        import torch

        v = self.check_factors(v)
        x = torch.zeros(len(v), 1, 16, 16)
        for i, (row, length) in enumerate(v):
            x[i, 0, 2 * row, : 3 + 2 * length] = 1.0
        return x


@pytest.fixture(scope="session")
def dsprites_data_root(tmp_path_factory) -> Path:
    """A data root with the procedural dSprites cache, rendered once per test session.

    Tests that render many dSprites images share it instead of each rendering the grid
    (about a minute on two cores). Set DBENCH_TEST_DATA to keep it between sessions.
    """
    from dbench.datasets.dsprites import DSprites

    root = Path(os.environ.get("DBENCH_TEST_DATA") or tmp_path_factory.mktemp("dsprites"))
    if not DSprites(data_dir=root).cache_state().startswith("ready"):
        DSprites(data_dir=root, source="procedural").prepare(progress=False)
    return root


@pytest.fixture
def dsprites_data(dsprites_data_root, monkeypatch) -> Path:
    """Point DBENCH_DATA (and so every dbench subprocess) at the prepared dSprites root."""
    monkeypatch.setenv("DBENCH_DATA", str(dsprites_data_root))
    return dsprites_data_root


@pytest.fixture
def toy_sim():
    return ToyBars()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
