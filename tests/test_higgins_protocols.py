"""The Higgins metric's classifier settings (``scale``, ``C``) and its two factor protocols."""

from __future__ import annotations

import numpy as np
import pytest

from dbench.errors import UserError
from dbench.registry import METRICS
from dbench.representation import Representation
from dbench.testing.toy import DSpritesFactors

SMALL = {"num_train": 400, "num_eval": 300, "batch_size": 16}
PROJECTION = np.random.default_rng(3).normal(size=(5, 3))


def projected(obs):
    return np.asarray(obs.factors, dtype=np.float64) @ PROJECTION


# Measured with dbench 0.1 (commit c413a74, before scale/C existed) on exactly this input:
# the defaults must keep reproducing them.
BEFORE = {
    "higgins": {"train_accuracy": 0.66, "eval_accuracy": 0.63},
    "higgins_noshape": {"train_accuracy": 0.835, "eval_accuracy": 0.8466666666666667},
}


@pytest.mark.parametrize("name", ["higgins", "higgins_noshape"])
@pytest.mark.parametrize("explicit", [{}, {"scale": False, "C": 1.0}])
def test_default_classifier_settings_reproduce_the_scores_before_they_existed(name, explicit):
    sim = DSpritesFactors()
    scores = METRICS.get(name)(
        sim, Representation(sim, projected), np.random.default_rng(7), **SMALL, **explicit
    )
    assert scores == BEFORE[name]


def test_scaling_lifts_a_tiny_variance_representation_that_defaults_leave_at_chance():
    """Factors x 1e-4 plus noise of the same size: the untrained VAE's situation."""
    sim = DSpritesFactors()

    def tiny(obs):
        v = np.asarray(obs.factors, dtype=np.float64) / np.array(sim.factor_sizes)
        noise = np.random.default_rng(int(obs.factors.sum()) % 2**31).normal(size=v.shape)
        return 1e-4 * v + 1e-5 * noise

    def score(**settings):
        rep = Representation(sim, tiny)
        return METRICS.get("higgins")(sim, rep, np.random.default_rng(0), **SMALL, **settings)

    default, scaled = score()["eval_accuracy"], score(scale=True)["eval_accuracy"]
    assert default < 0.3  # chance is 0.2 with five factors
    assert scaled > 0.6, (default, scaled)


@pytest.mark.parametrize("setting", [{"C": 0}, {"C": "big"}, {"scale": "yes"}])
def test_bad_classifier_settings_are_one_line_before_any_work(setting):
    with pytest.raises(UserError):
        METRICS.get("higgins").check(setting)


def test_compare_higgins2017_shows_both_factor_protocols(tmp_path, capsys):
    from dbench.engine.config import RunConfig
    from dbench.engine.run import run_one
    from tests._cli import cli

    fast = {"num_train": 200, "num_eval": 100, "batch_size": 16}
    settings = {f"{m}.{key}": v for m in ("higgins", "higgins_noshape") for key, v in fast.items()}
    for seed in (0, 1):
        run_one(
            RunConfig(
                model="oracle",
                metrics=["higgins", "higgins_noshape"],
                settings=settings,
                seed=seed,
                results_dir=str(tmp_path),
                data_dir=str(tmp_path / "data"),
            )
        )
    code, out, err = cli(capsys, "leaderboard", "--compare", "higgins2017", "--results-dir",
                         str(tmp_path))  # fmt: skip
    assert code == 0, err
    (line,) = [row for row in out.splitlines() if row.strip().startswith("ground truth")]
    assert line.count("100.00 ± 0.00") >= 2 and "(n=2)" in line
    assert "shape left out" in out and "higgins_noshape: shape left out" in out
