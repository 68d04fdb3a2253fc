"""UDR (Duan et al. 2020) across the seeds of one configuration."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

import dbench
from dbench.engine.udr import udr_pair
from tests._cli import cli
from tests.conftest import FAST_HIGGINS


def test_udr_pair_on_cases_computed_by_hand():
    """Two latents each; c = |rho(a, b)| is the sample correlation of independent a and b
    (~0.01). Same latents in another order: R = [[c, 1], [1, c]], every row and column gives
    1^2 / (1 + c), so UDR = 4 / (1 + c) / 4 = 1 / (1 + c) (1 when c = 0). If model j duplicates
    latent a, R = [[1, 1], [c, c]]: columns give 2 / (1 + c), rows 1 / 2 + c^2 / (2c), so
    UDR = (2 / (1 + c) + 1 / 2 + c / 2) / 4 (0.625 when c = 0)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 5000))
    z = np.stack([a, b], axis=1)
    on = np.ones(2, dtype=bool)
    c = abs(spearmanr(a, b).statistic)
    assert udr_pair(z, z[:, ::-1], on, on) == pytest.approx(1 / (1 + c))
    dup = np.stack([a, a], axis=1)
    expected = (2 / (1 + c) + 0.5 + c / 2) / 4
    assert udr_pair(z, dup, on, on) == pytest.approx(expected)
    assert udr_pair(z, rng.normal(size=(5000, 2)), on, on) < 0.6
    assert udr_pair(z, z, on, np.zeros(2, dtype=bool)) == 0.0  # no active latent


def test_dbench_udr_writes_a_score_into_each_seed_and_the_leaderboard_shows_it(tmp_path, capsys):
    args = ["--model=vae", "--dataset=blobs", "--set=dataset.grid=8", "--steps=30",
            "--batch-size=8", "--set=arch=higgins_mlp", "--set=latent_dim=3", "--metrics=higgins",
            *(f"--set=higgins.{k}={v}" for k, v in FAST_HIGGINS.items()), "--no-progress",
            "--results-dir", str(tmp_path)]  # fmt: skip
    for seed in (0, 1, 2):
        code, _, err = cli(capsys, "run", *args, f"--seed={seed}")
        assert code == 0, err
    first = sorted((tmp_path / "runs").glob("*.json"))[0].stem
    code, out, err = cli(capsys, "udr", first, "--num-samples=500", "--results-dir",
                         str(tmp_path))  # fmt: skip
    assert code == 0, err
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*.json")]
    assert all(0.0 <= r["scores"]["udr"]["udr"] <= 1.0 for r in records)
    assert all(len(r["metrics"]["udr"]["peers"]) == 3 for r in records)
    board = dbench.leaderboard(tmp_path, metric="udr")
    assert len(board) == 1 and int(board["udr.udr.n"].iloc[0]) == 3


def test_udr_refuses_a_single_run_or_mixed_configurations(tmp_path, capsys):
    code, _, err = cli(capsys, "udr", "nothing", "--results-dir", str(tmp_path))
    assert code == 2 and "no run matching" in err
