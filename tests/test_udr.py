"""UDR (Duan et al. 2020) across the seeds of one configuration."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

import dbench
from dbench.engine.udr import udr, udr_from_matrix, udr_pair
from dbench.errors import UserError
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


def test_udr_pair_with_one_active_latent_in_each_model():
    """Regression: with one active latent per model scipy's spearmanr returns a scalar, and
    UDR failed with "zero-size array to reduction operation maximum". Then R = [[c]] with
    c = |rho| of the two latents; each direction gives c^2 / c = c, so UDR = (c + c) / 2 = c
    under both aggregations. Ranks 1..5 against 2, 1, 3, 4, 5: sum d^2 = 2, so
    rho = 1 - 6 * 2 / (5 * (25 - 1)) = 0.9."""
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    b = np.array([2.0, 1.0, 3.0, 4.0, 5.0])
    noise = np.random.default_rng(0).normal(size=(5, 2))
    z_i = np.column_stack([a, noise])  # latent 0 active, 1 and 2 pruned
    z_j = np.column_stack([noise[:, 0], b])  # latent 1 active
    on_i, on_j = np.array([True, False, False]), np.array([False, True])
    rho = 1 - 6 * 2 / (5 * (5**2 - 1))
    for aggregate in ("paper", "disentanglement_lib"):
        assert udr_pair(z_i, z_j, on_i, on_j, aggregate) == pytest.approx(rho)
    # A latent and a monotone function of it: rho = 1, so UDR = 1 (disentanglement_lib's value).
    assert udr_pair(z_i, np.exp(z_i), on_i, on_i) == pytest.approx(1.0)


def test_udr_aggregations_on_a_hand_made_matrix():
    """R (d_a = 2 latents of model i, d_b = 3 of model j) = [[1, 0, 0], [0, .5, .5]].
    Columns (latents of j), r_b^2 / sum_a R: 1/1 = 1, .25/.5 = .5, .25/.5 = .5.
    Rows (latents of i), r_a^2 / sum_b R: 1/1 = 1, .25/1 = .25.
    Eq. 3 (paper): (1 + .5 + .5 + 1 + .25) / (2 + 3) = 3.25 / 5 = 0.65.
    disentanglement_lib: ((1 + .5 + .5) / 3 + (1 + .25) / 2) / 2 = (2/3 + 0.625) / 2."""
    r = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    paper = (1 + 0.5 + 0.5 + 1 + 0.25) / (2 + 3)
    library = ((1 + 0.5 + 0.5) / 3 + (1 + 0.25) / 2) / 2
    assert udr_from_matrix(r) == pytest.approx(paper)
    assert udr_from_matrix(r, "paper") == pytest.approx(paper)
    assert udr_from_matrix(r, "disentanglement_lib") == pytest.approx(library)
    assert udr_from_matrix(r.T, "paper") == pytest.approx(paper)  # symmetric in i and j
    assert udr_from_matrix(r.T, "disentanglement_lib") == pytest.approx(library)
    # Equal numbers of latents: the two agree. [[1, .5], [0, .5]]: columns 1/1 = 1, .25/1 = .25;
    # rows 1/1.5, .25/.5 = .5; both give (1 + .25 + 2/3 + .5) / 4.
    square = np.array([[1.0, 0.5], [0.0, 0.5]])
    both = (1 + 0.25 + 1 / 1.5 + 0.5) / 4
    assert udr_from_matrix(square, "paper") == pytest.approx(both)
    assert udr_from_matrix(square, "disentanglement_lib") == pytest.approx(both)
    with pytest.raises(ValueError, match="aggregate must be one of"):
        udr_from_matrix(r, "mean")


def test_udr_refuses_an_unknown_aggregate_before_any_work(tmp_path, capsys):
    with pytest.raises(UserError, match="aggregate must be one of 'paper', "):
        udr(tmp_path, ["nothing"], aggregate="mean")


def test_dbench_udr_writes_a_score_into_each_seed_and_the_leaderboard_shows_it(tmp_path, capsys):
    args = ["--model=vae", "--dataset=blobs", "--set=dataset.grid=8", "--steps=30",
            "--batch-size=8", "--set=arch=higgins_mlp", "--set=latent_dim=3", "--metrics=higgins",
            *(f"--set=higgins.{k}={v}" for k, v in FAST_HIGGINS.items()), "--no-progress",
            "--results-dir", str(tmp_path)]  # fmt: skip
    for seed in (0, 1, 2):
        code, _, err = cli(capsys, "run", *args, f"--seed={seed}")
        assert code == 0, err
    first = sorted((tmp_path / "runs").glob("*.json"))[0].stem
    # a run's sampled-representation sibling (same identity and seed) is not another seed
    code, _, err = cli(capsys, "score", first, "--metrics=unsupervised", "--representation",
                       "sampled", "--no-progress", "--results-dir", str(tmp_path))  # fmt: skip
    assert code == 0, err
    code, _, err = cli(capsys, "udr", f"{first}-sampled", "--results-dir", str(tmp_path))
    assert code == 2 and "holds sampled-representation scores" in err and len(err.splitlines()) == 1
    code, out, err = cli(capsys, "udr", first, "--num-samples=500", "--results-dir",
                         str(tmp_path))  # fmt: skip
    assert code == 0, err
    (tmp_path / "runs" / f"{first}-sampled.json").unlink()
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*.json")]
    assert all(0.0 <= r["scores"]["udr"]["udr"] <= 1.0 for r in records)
    # what was compared is printed: seeds, and each run's active latents (as recorded)
    assert "UDR over 3 seeds" in out and out.count("compared with 2 other seeds") == 3
    for r in records:
        active = r["metrics"]["udr"]["active_latents"]
        assert 0 <= active <= 3 and f"{r['run_id']}  udr=" in out
        assert f"active latents={active}" in out
    assert all(len(r["metrics"]["udr"]["peers"]) == 3 for r in records)
    # Eq. 3 is the default and goes unnamed, as in records written before the setting existed.
    assert all("aggregate" not in r["metrics"]["udr"]["settings"] for r in records)
    board = dbench.leaderboard(tmp_path, metric="udr")
    assert len(board) == 1 and int(board["udr.udr.n"].iloc[0]) == 3
    udr(tmp_path, [first], num_samples=500, aggregate="disentanglement_lib")
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*.json")]
    assert all(r["metrics"]["udr"]["settings"]["aggregate"] == "disentanglement_lib"
               for r in records)  # fmt: skip
    # scoring UDR again never loses the earlier one: it moves to the record's history
    for r in records:
        (old,) = [h for h in r["history"] if h["metric"] == "udr"]
        assert "aggregate" not in old["meta"]["settings"] and 0.0 <= old["scores"]["udr"] <= 1.0
    # --all: every configuration with two or more seeds (a sampled sibling is no seed), and a
    # second call skips what is current
    code, _, err = cli(capsys, "score", first, "--metrics=unsupervised", "--representation",
                       "sampled", "--no-progress", "--results-dir", str(tmp_path))  # fmt: skip
    assert code == 0, err
    every = ["udr", "--all", "--num-samples=500", "--results-dir", str(tmp_path)]
    code, out, err = cli(capsys, *every)
    assert code == 0 and "UDR over 3 seeds" in out and "scored for 1 of 1 configurations" in out
    code, out, err = cli(capsys, *every)
    assert code == 0 and "UDR is current, skipped" in out and "for 0 of 1" in out
    for args in ([], ["--all", first]):
        code, _, err = cli(capsys, "udr", *args, "--results-dir", str(tmp_path))
        assert code == 2 and "or --all (not both)" in err and len(err.splitlines()) == 1


def test_udr_refuses_a_single_run_or_mixed_configurations(tmp_path, capsys):
    code, _, err = cli(capsys, "udr", "nothing", "--results-dir", str(tmp_path))
    assert code == 2 and "no run matching" in err
