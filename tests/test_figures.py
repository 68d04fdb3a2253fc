"""Summary figures a paper would use: per dataset, readable labels, titles naming the dataset,
chance levels, a swept hyperparameter chosen automatically, and degenerate figures skipped with
a note. Records are written directly (no training), so these tests take seconds."""

from __future__ import annotations

import pytest

from dbench.reporting.aggregate import filtered_runs, load_records
from dbench.reporting.chance import chance_level
from dbench.reporting.figures import summary_figures, swept_parameter
from dbench.reporting.labels import score_label
from tests.test_leaderboard import record, write

SCORE = "higgins.eval_accuracy"
DSPRITES = ["shape", "scale", "orientation", "posX", "posY"]


def runs_of(folder):
    records, _ = load_records(folder)
    return filtered_runs(records, None, None, None)[0]


def vae(run_id, beta, seed, value, *, dataset="dsprites", latent_dim=10, recon=None):
    rec = record(
        run_id,
        seed=seed,
        dataset=dataset,
        kwargs={"beta": beta, "latent_dim": latent_dim},
        scores={"higgins": {"eval_accuracy": value}},
        training={"recon_loss": [90.0, recon if recon is not None else 50 + beta]},
    )
    rec["dataset"]["factor_names"] = DSPRITES
    return rec


def test_score_labels_are_human_readable():
    assert score_label("higgins.eval_accuracy") == "Higgins score (eval accuracy)"
    assert score_label("factorvae.eval_accuracy") == "FactorVAE score (eval accuracy)"
    assert score_label("mig.mig") == "MIG"
    assert score_label("plugin.some_score") == "plugin (some score)"


def test_chance_level_is_one_over_the_factors_the_classifier_chooses_from():
    assert chance_level("higgins.eval_accuracy", DSPRITES, {}) == pytest.approx(1 / 5)
    settings = {"exclude_factors": ["shape"]}
    assert chance_level("higgins.eval_accuracy", DSPRITES, settings) == pytest.approx(1 / 4)
    assert chance_level("higgins_noshape.eval_accuracy", DSPRITES, {}) == pytest.approx(1 / 4)
    assert chance_level("factorvae.eval_accuracy", ["posX", "posY"], {}) == pytest.approx(0.5)
    assert chance_level("factorvae.num_active_dims", DSPRITES, {}) is None
    assert chance_level("mig.mig", DSPRITES, {}) is None


def test_score_vs_beta_per_dataset_with_seeds_chance_line_and_readable_axes(tmp_path):
    write(tmp_path, *(
        vae(f"{d}-b{beta}-s{seed}", beta, seed, 0.5 + 0.1 * seed + 0.01 * beta, dataset=d)
        for d in ("dsprites", "shapes3d") for beta in (1, 4, 16) for seed in (0, 1)
    ))  # fmt: skip
    runs = runs_of(tmp_path)
    figures, skipped = summary_figures(runs, SCORE)
    assert set(figures) == {f"{d}-{kind}" for d in ("dsprites", "shapes3d")
                            for kind in ("seeds", "beta", "tradeoff")}  # fmt: skip
    assert not skipped

    ax = figures["dsprites-beta"].axes[0]
    assert ax.get_ylabel() == "Higgins score (eval accuracy)" and ax.get_xlabel() == "β"
    assert ax.get_title().startswith("dsprites: Higgins score (eval accuracy) vs β")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "4", "16"]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert dashed and dashed[0].get_ydata()[0] == pytest.approx(1 / 5)  # chance: 5 factors
    dots = [c for c in ax.collections if c.get_label() == "seeds"]
    assert len(dots[0].get_offsets()) == 6  # every seed drawn as a dot
    assert figures["shapes3d-seeds"].axes[0].get_title().startswith("shapes3d: ")

    trade = figures["dsprites-tradeoff"].axes[0]
    assert len(trade.collections[0].get_offsets()) == 6  # one point per run
    assert trade.get_ylabel() == "Higgins score (eval accuracy)"


def test_the_swept_hyperparameter_is_found_when_beta_does_not_vary(tmp_path):
    write(tmp_path, *(
        vae(f"d{dim}-s{seed}", 4, seed, 0.6 + dim / 100, latent_dim=dim)
        for dim in (2, 5, 10) for seed in (0, 1)
    ))  # fmt: skip
    runs = runs_of(tmp_path)
    assert swept_parameter(runs, SCORE) == "latent_dim"
    figures, _ = summary_figures(runs, SCORE)
    assert figures["sweep"].axes[0].get_xlabel() == "latent dim"


def test_figures_of_one_point_are_skipped_with_a_note(tmp_path):
    one = vae("only", 4, 0, 0.7)
    oracle = record("o", model="oracle", dataset="blobs", scores={"higgins": {"eval_accuracy": 1}})
    write(tmp_path, one, oracle)
    figures, skipped = summary_figures(runs_of(tmp_path), SCORE)
    assert figures == {}
    text = " | ".join(skipped)
    for dataset in ("dsprites", "blobs"):
        assert f"{dataset}: seed distribution skipped (one run, one point)" in text
        assert f"{dataset}: score vs hyperparameter skipped" in text
        assert f"{dataset}: trade-off skipped" in text


def test_two_seeds_of_one_configuration_draw_seeds_but_no_sweep(tmp_path):
    write(tmp_path, vae("a", 4, 0, 0.7), vae("b", 4, 1, 0.8))
    figures, skipped = summary_figures(runs_of(tmp_path), SCORE)
    assert set(figures) == {"seeds", "tradeoff"}
    assert any("score vs hyperparameter skipped" in s for s in skipped)


def test_the_seeds_figure_is_the_same_file_when_drawn_twice_and_numpy_is_left_alone(tmp_path):
    """The strip plot's jitter is seeded (and numpy's global generator restored), so that
    `make figures` on unchanged records changes no committed PNG."""
    import numpy as np

    from dbench.reporting.plots import png_bytes

    write(tmp_path, *(vae(f"b{beta}-s{seed}", beta, seed, 0.5 + 0.1 * seed + 0.01 * beta)
                      for beta in (1, 4) for seed in (0, 1, 2)))  # fmt: skip
    runs = runs_of(tmp_path)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    drawn = [png_bytes(summary_figures(runs, SCORE)[0]["seeds"]) for _ in range(2)]
    assert drawn[0] == drawn[1]
    assert (np.random.get_state()[1] == before).all()
