"""The ``arrays`` dataset: labelled data that is not a full grid, built from arrays.

It is checked with every metric that must work on non-grid data, and a full grid loaded
through it must score like the grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dbench.datasets.arrays import discretise, from_arrays
from dbench.datasets.files import MissingData
from dbench.errors import UserError
from dbench.registry import DATASETS, METRICS
from dbench.representation import Representation
from dbench.testing import TinyShapes, assert_passed, check_dataset
from tests._datasets import one_line, sha

# -- arrays: labelled data that is not a grid --------------------------------------------------


def blob_images(pos: np.ndarray, side: int = 16) -> np.ndarray:
    """Grey images of a Gaussian blob at continuous positions (n, 2) in [0, 1]."""
    g = np.arange(side) + 0.5
    cy, cx = (
        (2 + pos[:, 0] * (side - 4))[:, None, None],
        (2 + pos[:, 1] * (side - 4))[:, None, None],
    )
    d2 = (g[None, :, None] - cy) ** 2 + (g[None, None, :] - cx) ** 2
    return np.exp(-d2 / 4.0).astype(np.float32)


@pytest.fixture(scope="module")
def scattered():
    """800 images of a blob at random continuous positions, with a discrete size factor."""
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 1, size=(800, 2))
    size = rng.integers(0, 2, size=800)
    images = blob_images(pos) * (0.6 + 0.4 * size)[:, None, None]
    factors = np.column_stack([pos, size])
    return from_arrays(images, factors, names=["y", "x", "size"], bins=8)


def test_factors_are_discretised_as_documented():
    codes, info = discretise(np.array([3, 7, 3, 9]), bins=2, binning="quantile")
    assert info["kind"] == "discrete" and codes.tolist() == [0, 1, 0, 2]
    x = np.linspace(0, 1, 100) ** 2
    for binning in ("quantile", "uniform"):
        codes, info = discretise(x, bins=5, binning=binning)
        assert info["kind"] == "continuous" and codes.max() == 4 and len(info["edges"]) == 6
    assert np.bincount(discretise(x, 5, "quantile")[0]).tolist() == [20] * 5


def test_held_factor_vectors_are_answered_by_rows_sharing_the_held_value(scattered):
    sim, rng = scattered, np.random.default_rng(1)
    assert sim.factor_sizes == (8, 8, 2) and not hasattr(sim, "index_of")  # no FiniteGrid
    for k in range(3):  # dense data: every held vector exists, answered exactly
        v1, v2 = sim.sample_factors(300, rng), sim.sample_factors(300, rng)
        v2[:, k] = v1[:, k]
        rows = sim.rows_for(v2, sim.sample_nuisance(300, rng))
        assert (sim.codes[rows] == v2).all()
        shared = sim.sample_sharing(np.full(300, k), v1[:, k], rng)
        assert (shared[:, k] == v1[:, k]).all()
    assert sim.matcher.replaced == 0
    assert_passed(check_dataset(sim))  # nuisance w: which of a factor vector's rows


def test_missing_held_vectors_keep_the_held_factor():
    from dbench.datasets.arrays_match import RowMatcher

    # rows (a, b, c); (0, 1, 1) is missing: only factor 0 can have been replaced in it
    codes = np.array([[0, 0, 0], [1, 1, 1], [0, 2, 2], [1, 1, 0], [0, 0, 1]])
    matcher = RowMatcher(codes, (2, 3, 3))
    assert matcher.rows(np.array([[1, 1, 1], [0, 1, 1]]), np.zeros(2))[0] == 1
    rows = matcher.rows(np.array([[0, 1, 1]] * 4), np.array([0.0, 0.3, 0.6, 0.9]))
    assert set(rows) == {4}  # shares a = 0 and the most of the rest (c = 1)
    # sparse continuous data: the held factor's value is kept in most held pairs
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 1, size=(800, 2))
    sim = from_arrays(blob_images(pos), np.column_stack([pos, rng.integers(0, 2, 800)]), bins=16)
    for k in range(3):
        v1, v2 = sim.sample_factors(1000, rng), sim.sample_factors(1000, rng)
        v2[:, k] = v1[:, k]
        rows = sim.rows_for(v2, rng.random(1000))
        assert (sim.codes[rows, k] == v1[:, k]).mean() > 0.9
    assert sim.matcher.replaced > 500


@pytest.mark.parametrize(
    "name, settings",
    [
        ("higgins", {"num_train": 100, "num_eval": 60, "batch_size": 8}),
        ("factorvae", {"num_train": 60, "num_eval": 40, "num_variance_estimate": 300}),
        ("mig", {"num_train": 600}),
        ("sap", {"num_train": 300, "num_test": 200}),
        ("dci", {"num_train": 300, "num_test": 150, "n_estimators": 5}),
        ("modularity", {"num_train": 300, "num_test": 150}),
    ],
)
def test_metrics_work_on_non_grid_data(scattered, name, settings):
    sim = scattered
    projection = np.random.default_rng(2).normal(size=(256, 6))
    rep = Representation(sim, lambda obs: obs.images.reshape(len(obs), -1).numpy() @ projection)
    scores = METRICS.get(name)(sim, rep, np.random.default_rng(0), **settings)
    assert scores and all(np.isfinite(v) for v in scores.values())


def test_arrays_refuses_data_no_metric_can_use_in_one_line():
    images = np.zeros((10, 8, 8), dtype=np.uint8)
    with pytest.raises(UserError, match="takes a single value") as exc:
        from_arrays(images, np.column_stack([np.arange(10) % 2, np.zeros(10)]))
    one_line(exc)
    with pytest.raises(UserError, match="shared by 1 row") as exc:
        from_arrays(images, np.r_[np.zeros(9), 1].astype(int))
    one_line(exc)
    with pytest.raises(UserError, match="floats in"):
        from_arrays(np.full((10, 8, 8), 2.0), np.arange(10) % 2)
    with pytest.raises(MissingData) as exc:
        DATASETS.create("arrays")
    assert "dataset.path" in one_line(exc)


def grid_arrays(path: Path) -> tuple[TinyShapes, np.ndarray]:
    grid = TinyShapes()
    index = np.arange(grid.num_observations)
    factors = grid.factors_of(index)
    images = (grid.sim(factors)[:, 0].numpy() > 0.5).astype(np.uint8)  # 0/1 like dSprites
    if path.suffix == ".npz":
        np.savez(path, images=images, factors=factors, factor_names=np.array(grid.factor_names))
    else:
        import h5py

        with h5py.File(path, "w") as f:
            f["images"], f["factors"] = images, factors
            f["factor_names"] = np.array(grid.factor_names, dtype="S")
    return grid, factors


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_a_full_grid_through_arrays_is_the_grid(tmp_path, suffix):
    grid, _ = grid_arrays(tmp_path / f"grid{suffix}")
    sim = DATASETS.create("arrays", path=str(tmp_path / f"grid{suffix}"))
    assert sim.factor_names == grid.factor_names and sim.factor_sizes == grid.factor_sizes
    assert sim.binary and not sim.has_nuisance and sim.sample_nuisance(3, None) is None
    v = grid.sample_factors(40, np.random.default_rng(0))
    assert torch.equal(sim.sim(v), grid.sim(v))
    assert sim.describe()["checksum"] == sha(tmp_path / f"grid{suffix}")
    assert_passed(check_dataset(sim))


def test_a_full_grid_through_arrays_scores_like_the_grid(tmp_path):
    grid, _ = grid_arrays(tmp_path / "grid.npz")
    sim = DATASETS.create("arrays", path=str(tmp_path / "grid.npz"))
    projection = np.random.default_rng(5).normal(size=(256, 5))

    def scores(data, name, settings):
        out = []
        for seed in range(4):
            rep = Representation(
                data, lambda obs: obs.images.reshape(len(obs), -1).numpy() @ projection
            )
            out.append(METRICS.get(name)(data, rep, np.random.default_rng(seed), **settings))
        return out

    for name, settings, key in (
        ("mig", {"num_train": 1000}, "mig"),
        ("higgins", {"num_train": 200, "num_eval": 100, "batch_size": 16}, "eval_accuracy"),
    ):
        a = np.array([s[key] for s in scores(sim, name, settings)])
        g = np.array([s[key] for s in scores(grid, name, settings)])
        spread = max(a.std(), g.std(), 0.01)
        assert abs(a.mean() - g.mean()) <= 3 * spread, (name, a, g)


def test_arrays_run_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from dbench.cli import app

    grid_arrays(tmp_path / "grid.npz")
    args = ["run", "--model", "pca", "--dataset", "arrays", "--results-dir", str(tmp_path)]
    args += ["--set", f"dataset.path={tmp_path / 'grid.npz'}", "--set", "n_samples=96"]
    args += ["--metrics", "mig", "--set", "mig.num_train=300", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "mig" in result.output


# -- pairs for weak supervision: both members real rows ------------------------------------------


def _existing(sim, v: np.ndarray) -> np.ndarray:
    """Whether each factor vector is some row's (exactly, not a RowMatcher stand-in)."""
    keys = set((sim.codes @ sim.matcher.strides).tolist())
    return np.array([key in keys for key in (v @ sim.matcher.strides).tolist()])


@pytest.mark.parametrize("k", [1, 2, 3, None])
def test_pairs_from_labelled_data_are_rows_differing_in_exactly_k_factors(scattered, k):
    v1, v2 = scattered.sample_pairs(400, k, np.random.default_rng(3))
    assert _existing(scattered, v1).all() and _existing(scattered, v2).all()
    count = (v1 != v2).sum(1)
    if k is None:  # the paper's k = rnd: 1..d-1 of the d = 3 factors
        assert set(count.tolist()) == {1, 2}
    else:
        assert (count == k).all()


def test_pairs_too_rare_in_labelled_data_are_one_line():
    rng = np.random.default_rng(0)
    unique = from_arrays(rng.random((60, 8, 8)), rng.random((60, 2)), bins=60, min_rows=1)
    with pytest.raises(UserError, match="too rare to draw pairs") as info:
        unique.sample_pairs(8, 1, rng)  # every value of a factor is one row's: no partner
    assert "\n" not in str(info.value)


def test_ada_gvae_trains_on_labelled_data(scattered):
    from dbench.contracts import Budget, FitContext
    from dbench.registry import MODELS

    model = MODELS.create("adagvae", latent_dim=3, arch="mlp", k=1)
    model.fit(scattered, np.random.default_rng(0), FitContext(budget=Budget(3, 8)))
    assert model.fit_info_["steps"] == 3
    codes = Representation(scattered, model.encode)(
        scattered.sample_factors(4, np.random.default_rng(1))
    )
    assert codes.shape == (4, 3) and np.isfinite(codes).all()
