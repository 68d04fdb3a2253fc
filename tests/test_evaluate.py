"""Evaluate any model: an outside encoder or saved codes, scored like a run, ranked with runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import dbench
from dbench.errors import UserError
from dbench.registry import DATASETS
from tests._cli import cli, one_line_error
from tests.conftest import FAST_HIGGINS

SETTINGS = {"dataset.grid": 8, **{f"higgins.{k}": v for k, v in FAST_HIGGINS.items()}}
SET_ARGS = [f"--set={k}={v}" for k, v in SETTINGS.items()]

ENCODER_MODULE = """
import torch

class Pooled(torch.nn.Module):
    '''A fixed random projection of 8x8-pooled pixels (an "outside" model).'''

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.proj = torch.nn.Parameter(torch.randn(64, 4, generator=gen), requires_grad=False)

    def forward(self, x):
        return torch.nn.functional.avg_pool2d(x, 8).flatten(1) @ self.proj

def make():
    return Pooled()

def wrong_shape(x):
    return x.flatten(1)[:, :3].T
"""


@pytest.fixture
def encoder_module(tmp_path, monkeypatch):
    (tmp_path / "outside_model.py").write_text(ENCODER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    return importlib.import_module("outside_model")


def blobs_codes(path, subset: bool = False) -> None:
    sim = DATASETS.create("blobs", grid=8)
    factors = sim.factors_of(np.arange(sim.num_observations))
    if subset:
        np.savez(path, z=factors[::3].astype(float), factors=factors[::3])
    else:
        np.savez(path, z=factors.astype(float))


def test_module_function_and_codes_all_reach_the_leaderboard(encoder_module, capsys, tmp_path):
    results = tmp_path / "results"
    pooled = dict(dataset="blobs", metrics=["higgins"], settings=SETTINGS, name="pooled")
    record = dbench.evaluate(encoder_module.make(), results_dir=results, **pooled)
    assert record["origin"] == "evaluate" and "training" not in record
    assert 0.0 <= record["scores"]["higgins"]["eval_accuracy"] <= 1.0
    again = dbench.evaluate(encoder_module.make(), results_dir=results, **pooled)
    assert again["existing"] and again["scores"] == record["scores"]  # a notebook's 2nd call

    common = ["--dataset", "blobs", "--metrics", "higgins", *SET_ARGS]
    common += ["--results-dir", str(results), "--no-progress"]
    code, out, err = cli(
        capsys, "evaluate", "--encoder", "outside_model:make", *common, "--name", "pooledcli"
    )
    assert code == 0, err
    blobs_codes(tmp_path / "factors.npz")
    codes = str(tmp_path / "factors.npz")
    code, out, err = cli(capsys, "evaluate", "--representations", codes, *common)
    assert code == 0, err
    board = dbench.leaderboard(results, metric="higgins")
    assert {"pooled", "pooledcli", "factors"} <= set(board["model"])
    by_model = board.set_index("model")["higgins.eval_accuracy.mean"]
    assert by_model["factors"] == pytest.approx(1.0)  # the factors themselves are perfect
    assert by_model["pooled"] == by_model["pooledcli"]  # same encoder, same protocol


def test_oracle_factors_as_codes_score_higgins_one_on_dsprites(tmp_path, capsys):
    sim = DATASETS.create("dsprites", data_dir=str(tmp_path / "data"))
    factors = sim.factors_of(np.arange(sim.num_observations))
    np.savez(tmp_path / "oracle.npz", z=factors.astype(np.float32))
    code, out, err = cli(
        capsys,
        "evaluate",
        "--representations",
        str(tmp_path / "oracle.npz"),
        "--dataset",
        "dsprites",
        "--metrics",
        "higgins",
        "--data-dir",
        str(tmp_path / "data"),
        "--results-dir",
        str(tmp_path / "r"),
        "--no-progress",
    )
    assert code == 0, err
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "r" / "runs").glob("*.json")]
    assert record["scores"]["higgins"]["eval_accuracy"] == 1.0
    assert record["representation"]["encoded"] <= sim.num_observations


def test_a_subset_of_the_grid_scores_iid_metrics_and_says_what_pair_metrics_need(tmp_path, capsys):
    blobs_codes(tmp_path / "sub.npz", subset=True)
    base = [
        "evaluate",
        "--representations",
        str(tmp_path / "sub.npz"),
        "--dataset",
        "blobs",
        "--set=dataset.grid=8",
        "--results-dir",
        str(tmp_path),
        "--no-progress",
    ]
    code, out, err = cli(capsys, *base, "--metrics", "mig", "--set=mig.fast=true")
    assert code == 0, err
    code, out, err = cli(capsys, *base, "--metrics", "higgins", "--set=higgins.fast=true")
    one_line_error(code, err, "needs the full grid")


@pytest.mark.parametrize(
    "arrays, needle",
    [
        ({"z": np.zeros((5, 2))}, "has 5 rows"),
        ({"codes": np.zeros((64, 2))}, "no array 'z'"),
        ({"z": np.full((64, 2), np.nan)}, "NaN"),
        ({"z": np.zeros((4, 2)), "factors": np.zeros((4, 2), dtype=int)}, "too small"),
        ({"z": np.zeros((20, 2)), "factors": np.zeros((19, 2), dtype=int)}, "one row per row"),
    ],
)
def test_bad_representation_files_are_one_line(tmp_path, capsys, arrays, needle):
    np.savez(tmp_path / "bad.npz", **arrays)
    code, _, err = cli(
        capsys,
        "evaluate",
        "--representations",
        str(tmp_path / "bad.npz"),
        "--dataset",
        "blobs",
        "--set=dataset.grid=8",
        "--metrics",
        "mig",
        "--results-dir",
        str(tmp_path),
    )
    one_line_error(code, err, needle)


def test_bad_encoders_are_one_line(encoder_module, capsys, tmp_path):
    for target, needle in (
        ("outside_model:wrong_shape", "must return shape (2, D)"),
        ("outside_model:nothing", "has no attribute"),
        ("no_such_module:x", "cannot import"),
        ("outside_model", "MODULE:ATTR"),
    ):
        code, _, err = cli(
            capsys,
            "evaluate",
            "--encoder",
            target,
            "--dataset",
            "blobs",
            "--metrics",
            "higgins",
            *SET_ARGS,
            "--results-dir",
            str(tmp_path),
        )
        one_line_error(code, err, needle)
    with pytest.raises(UserError, match="NaN"):
        dbench.evaluate(
            lambda x: torch.full((len(x), 2), float("nan")),
            dataset="blobs",
            metrics=["higgins"],
            settings=SETTINGS,
            results_dir=tmp_path,
        )
