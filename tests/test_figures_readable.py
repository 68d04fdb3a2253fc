"""Figures a reader can read (issue 29): per-run titles that say which run, a collapsed posterior
said on its traversals, seed distributions labelled and ordered as the table, data-driven and
logarithmic axes, a budget study's score-vs-steps figure, subtitles that say what is drawn,
per-run figures for every configuration of the report, an ``evaluate`` run's latent map from
its codes, and data previews with value labels."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest

from dbench.contracts import Budget
from dbench.engine.config import RunConfig
from dbench.engine.run import run_one
from dbench.errors import UserError
from dbench.registry import DATASETS, Entry
from dbench.reporting.aggregate import aggregate, filtered_runs, load_records
from dbench.reporting.figures import seed_distribution, summary_figures
from dbench.reporting.runs import runs_frame
from tests._cli import cli, one_line_error
from tests._toy import ToySquares
from tests.test_leaderboard import TINY, record, toy_entry, write

SCORE = "higgins.eval_accuracy"
DSPRITES = ["shape", "scale", "orientation", "posX", "posY"]
COLLAPSED = "posterior collapsed: no latent carries information"

pytestmark = pytest.mark.usefixtures("one_thread")


def titles(fig) -> str:
    """Every title of a figure: its suptitle and each axes' title."""
    texts = [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes]
    return " || ".join(t for t in texts if t)


# -- fixtures ----------------------------------------------------------------------------------
AUTO = "DBENCH_TEST_SQUARES_AUTO"


class SourcedSquares(ToySquares):
    """Toy squares whose ``source="auto"`` answers what ``$DBENCH_TEST_SQUARES_AUTO`` says, as
    dSprites answers ``cache`` once ``dbench data prepare`` has run: another source, another
    checksum."""

    name = "sourced_squares"

    def __init__(self, source: str = "auto"):
        super().__init__()
        if source not in ("auto", "procedural", "cache"):
            raise UserError(f"sourced_squares: unknown source {source!r}")
        self.source = os.environ.get(AUTO, "procedural") if source == "auto" else source

    def describe(self):
        return {**super().describe(), "source": self.source, "checksum": f"sq-{self.source}"}


ENTRIES = {
    "toy_squares": toy_entry(),
    "sourced_squares": Entry(
        "sourced_squares", "tests.test_figures_readable:SourcedSquares", "tests (built-in)"
    ),
}


@pytest.fixture
def toy_data(monkeypatch):
    """The toy datasets registered; a cache of sourced squares was prepared after the runs."""
    for name, entry in ENTRIES.items():
        monkeypatch.setitem(DATASETS._entries, name, entry)
    monkeypatch.setenv(AUTO, "cache")


@pytest.fixture(scope="module")
def toy_results(tmp_path_factory):
    """Toy squares: oracle, pca x2 seeds, betavae beta=16 (2-D) and beta=1 (3-D), 3 steps
    each; sourced squares: pca, run while ``auto`` answered ``procedural`` (``toy_data``
    makes it answer ``cache``); evaluate runs of 2-D and 3-D codes kept outside the results
    folder."""
    out = tmp_path_factory.mktemp("readable")
    ids = {}
    with pytest.MonkeyPatch.context() as mp:
        for name, entry in ENTRIES.items():
            mp.setitem(DATASETS._entries, name, entry)
        mp.setenv("MPLCONFIGDIR", str(tmp_path_factory.mktemp("mpl")))
        mp.setenv(AUTO, "procedural")
        common = dict(dataset="toy_squares", metrics=["higgins"], settings=TINY,
                      results_dir=str(out), device="cpu")  # fmt: skip
        pca = {"n_samples": 200}
        ids["oracle"] = run_one(RunConfig(model="oracle", **common))["run_id"]
        for seed in (0, 1):
            ids[f"pca{seed}"] = run_one(
                RunConfig(model="pca", model_kwargs=pca, seed=seed, **common)
            )["run_id"]
        vae = dict(budget=Budget(steps=3, batch_size=16), **common)
        for beta, dim, seed in ((16, 2, 1), (1, 3, 0)):
            kwargs = {"beta": beta, "latent_dim": dim, "compile": False}
            rec = run_one(RunConfig(model="betavae", model_kwargs=kwargs, seed=seed, **vae))
            ids[f"vae{beta}"] = rec["run_id"]
        sourced = {**common, "dataset": "sourced_squares"}
        ids["sourced"] = run_one(RunConfig(model="pca", model_kwargs=pca, **sourced))["run_id"]

        from dbench.engine.evaluate import evaluate_codes

        sim = ToySquares()
        v = sim.factors_of(np.arange(sim.num_observations))
        codes = tmp_path_factory.mktemp("codes") / "codes2d.npz"
        np.savez(codes, z=(v[:, 1:] - 3.5) / 2.0)
        scoring = dict(dataset="toy_squares", metrics=["mig"], seed=0, settings=None,
                       results_dir=str(out), data_dir=None)  # fmt: skip
        rec = evaluate_codes(codes, **scoring)
        ids["codes"], ids["codes_file"] = rec["run_id"], codes
        three = codes.parent / "codes3d.npz"
        np.savez(three, z=(v - 3.5) / 2.0)
        rec = evaluate_codes(three, **scoring)
        ids["codes3"], ids["codes3_file"] = rec["run_id"], three
    return out, ids


def _record(results, run_id):
    return json.loads((results / "runs" / f"{run_id}.json").read_text())


# -- 1. per-run titles and a collapsed posterior -----------------------------------------------
def test_every_per_run_title_names_model_settings_budget_and_seed(toy_results, toy_data):
    from dbench.reporting.plots import run_figures

    results, ids = toy_results
    figures, _ = run_figures(_record(results, ids["vae16"]), results, steps=3)
    assert {"kl", "traversals", "latent_space", "latent_grid"} <= set(figures)
    for name, fig in figures.items():
        text = titles(fig)
        for part in ("toy_squares", "betavae", "beta=16", "latent_dim=2", "steps=3", "seed 1"):
            assert part in text, (name, text)
    figures, _ = run_figures(_record(results, ids["pca0"]), results, steps=3)
    text = titles(figures["traversals"])
    assert "pca" in text and "n_samples=200" in text and "seed 0" in text


def test_a_collapsed_posterior_is_said_on_the_traversals(toy_results, toy_data):
    from dbench.reporting.plots import run_figures

    results, ids = toy_results
    record = _record(results, ids["vae16"])
    record["training"]["kl_per_dim"] = [0.004, 0.002]  # every latent below 0.01 nats
    figures, notes = run_figures(record, results, steps=3)
    ax = figures["traversals"].axes[0]
    assert any(t.get_text().startswith(COLLAPSED) for t in ax.texts)
    assert any(n.startswith(COLLAPSED) for n in notes)
    record["training"]["kl_per_dim"] = [0.5, 0.002]  # one latent carries information
    figures, notes = run_figures(record, results, steps=3)
    assert not figures["traversals"].axes[0].texts
    assert not any(COLLAPSED in n for n in notes)


class Constant:
    """Decodes every z to one black image: a collapsed decoder without a recorded KL."""

    latent_dim = 3

    def encode(self, obs):
        return np.zeros((len(obs.factors), 3), dtype=np.float32)

    def decode(self, z):
        return np.zeros((len(z), 1, 32, 32), dtype=np.float32)


def test_without_a_kl_the_decoded_images_decide_the_collapse_note():
    from dbench.reporting.plots import latent_traversals

    ax = latent_traversals(Constant(), ToySquares(), None, steps=3).axes[0]
    assert [t.get_text() for t in ax.texts] == [
        "no latent changes the decoded image: every traversal row is one image"
    ]


# -- 2. seed distributions ---------------------------------------------------------------------
def _budget_study(folder, recon=None):
    """betavae at 5k steps (median above 30k's, mean below) and 30k steps, vae at 5k."""
    scores = {("betavae", 5000): [0.60, 0.90, 0.91], ("betavae", 30000): [0.84, 0.85, 0.86],
              ("vae", 5000): [0.70, 0.72, 0.74], ("vae", 30000): [0.75, 0.78, 0.80]}  # fmt: skip
    records = []
    for (model, steps), values in scores.items():
        for seed, value in enumerate(values):
            rec = record(f"{model}-{steps}-s{seed}", model=model, seed=seed,
                         kwargs={"beta": 4} if model == "betavae" else {},
                         scores={"higgins": {"eval_accuracy": value}},
                         budget={"steps": steps, "batch_size": 64},
                         training={"recon_loss": [900.0, (recon or {}).get(model, 90) + seed]},
                         )  # fmt: skip
            rec["dataset"]["factor_names"] = DSPRITES
            records.append(rec)
    write(folder, *records)
    records, _ = load_records(folder)
    return filtered_runs(records, None, None, None)


def test_seed_rows_say_what_differs_in_the_tables_order_with_limits_from_the_data(tmp_path):
    runs, meta = _budget_study(tmp_path)
    board = aggregate(runs, meta)
    figures, _ = summary_figures(runs, SCORE)
    ax = figures["seeds"].axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == ["betavae [steps=30000] (n=3)", "betavae [steps=5000] (n=3)",
                    "vae [steps=30000] (n=3)", "vae [steps=5000] (n=3)"]  # fmt: skip
    ranked = [f"{m} [steps={s}]" for m, s in zip(board["model"], board["steps"], strict=True)]
    assert [r.removesuffix(" (n=3)") for r in rows] == ranked  # the table's order
    low, high = ax.get_xlim()
    assert 0.5 < low < 0.60 and 0.91 < high < 1.0  # the data's range, not chance's (0.2)
    assert ax.get_xlabel().endswith("\nchance 0.2: below this axis")
    assert not [line for line in ax.get_lines() if line.get_linestyle() == "--"]


def test_rows_under_other_metric_settings_name_the_settings(tmp_path):
    recs = []
    for seed, (value, settings) in enumerate([(0.7, {}), (0.8, {}), (0.6, {"num_train": 500}),
                                              (0.65, {"num_train": 500})]):  # fmt: skip
        rec = record(f"r{seed}", seed=seed, kwargs={"beta": 4},
                     scores={"higgins": {"eval_accuracy": value}})  # fmt: skip
        rec["metrics"]["higgins"]["settings"] = settings
        recs.append(rec)
    write(tmp_path, *recs)
    runs = runs_frame(load_records(tmp_path)[0])
    rows = [t.get_text() for t in seed_distribution(runs, SCORE).axes[0].get_yticklabels()]
    assert rows[0] == "betavae (higgins v1) (n=2)"
    assert rows[1] == "betavae (higgins v1 (num_train=500)) (n=2)"
    assert not any("settings #" in r for r in rows)


# -- 3. trade-off scale and the budget study's steps figure ------------------------------------
def test_the_tradeoff_turns_logarithmic_beside_an_untrained_vae(tmp_path):
    runs, _ = _budget_study(tmp_path, recon={"vae": 2600.0, "betavae": 100.0})
    ax = summary_figures(runs, SCORE)[0]["tradeoff"].axes[0]
    assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
    ax.figure.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all(t.isdigit() for t in ticks), ticks  # plain numbers, never mathtext


def test_close_losses_keep_a_linear_tradeoff(tmp_path):
    runs, _ = _budget_study(tmp_path)
    assert summary_figures(runs, SCORE)[0]["tradeoff"].axes[0].get_xscale() == "linear"


def test_a_budget_study_gets_score_against_steps(tmp_path):
    runs, _ = _budget_study(tmp_path)
    figures, _ = summary_figures(runs, SCORE)
    ax = figures["steps"].axes[0]
    assert ax.get_xlabel() == "training steps"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5,000", "30,000"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "betavae" in legend and "vae" in legend
    assert ax.get_title() == ("dsprites: Higgins score (eval accuracy) vs training steps\n"
                              "mean ± std over seeds; dots are runs")  # fmt: skip
    means = [line for line in ax.get_lines() if len(line.get_xdata()) == 2]
    assert any(np.allclose(line.get_ydata(), [np.mean([0.6, 0.9, 0.91]), 0.85]) for line in means)


def test_no_steps_figure_without_a_budget_study(tmp_path):
    write(tmp_path, *(record(f"r{s}", seed=s, scores={"higgins": {"eval_accuracy": 0.5 + s / 10}})
                      for s in range(3)))  # fmt: skip
    runs = filtered_runs(load_records(tmp_path)[0], None, None, None)[0]
    assert "steps" not in summary_figures(runs, SCORE)[0]


# -- 4. what a point is ------------------------------------------------------------------------
def test_one_run_per_point_is_what_the_subtitle_says(tmp_path):
    write(tmp_path, *(record(f"b{beta}", kwargs={"beta": beta},
                             scores={"higgins": {"eval_accuracy": 0.5 + beta / 100}})
                      for beta in (1, 4, 16)))  # fmt: skip
    runs = filtered_runs(load_records(tmp_path)[0], None, None, None)[0]
    ax = summary_figures(runs, SCORE)[0]["beta"].axes[0]
    assert ax.get_title().endswith("\none run per point (no seeds to average)")
    assert "dots are runs" not in ax.get_title()
    assert not [c for c in ax.collections if c.get_label() == "seeds"]


# -- 5. the report's per-run figures -----------------------------------------------------------
def test_the_report_draws_the_best_run_of_every_configuration_and_names_the_rest(
    toy_results, toy_data
):
    from dbench.reporting.html import build_report

    results, ids = toy_results
    page = build_report(results, compare=None)
    drawn = re.findall(r"<h4>(.*?) — run (\S+)</h4>", page)
    pca = {i: _record(results, ids[f"pca{i}"])["scores"]["higgins"]["eval_accuracy"]
           for i in (0, 1)}  # fmt: skip
    best = ids[f"pca{max(pca, key=pca.get)}"]  # the best seed, not the median
    assert sorted(run for _, run in drawn) == sorted([best, ids["vae16"], ids["vae1"],
                                                      ids["sourced"]])  # fmt: skip
    assert any("beta=16" in label and "steps=3" in label for label, _ in drawn)
    assert f"{ids['oracle']}): no figure: " in page  # nothing to draw: said, not dropped
    assert f"{ids['codes']}): skipped: scored by dbench evaluate, no model state" in page
    # the run recorded the procedural source; auto now answers "cache": it is still drawn
    assert f"traversals: {ids['sourced']}" in page
    assert "was scored on dataset source" not in page


def test_the_recorded_source_is_what_loads(toy_results, toy_data):
    from dbench.engine.saved import load_dataset
    from dbench.reporting.plots import load_data

    results, ids = toy_results
    record = _record(results, ids["sourced"])
    with pytest.raises(UserError, match="was scored on dataset source 'procedural'"):
        load_dataset(record)  # what the report used to load
    assert load_data(record).describe()["source"] == "procedural"


def test_a_per_run_limit_names_what_it_left_out(toy_results, toy_data):
    from dbench.reporting.html import build_report

    results, _ = toy_results
    page = build_report(results, compare=None, per_run=1, dataset="toy_squares")
    assert page.count("<h4>") == 1 and "skipped: --per-run 1 configurations drawn" in page


# -- 6. dbench show on an evaluate run ----------------------------------------------------------
def test_show_draws_an_evaluate_runs_2d_codes(toy_results, toy_data, capsys, tmp_path,
                                              monkeypatch):  # fmt: skip
    import dbench.reporting.plots as plots

    results, ids = toy_results
    run, codes = ids["codes"], ids["codes_file"]
    base = ("--results-dir", str(results), "-o", str(tmp_path))
    code, out, err = cli(capsys, "show", run, *base)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 0 and len(lines) == 1 and "give them with --codes FILE.npz" in lines[0], err
    assert not list(tmp_path.glob("*.png"))

    seen, save = [], plots.save
    monkeypatch.setattr(plots, "save", lambda fig, path, dpi=150: seen.append(fig)
                        or save(fig, path, dpi=40))  # fmt: skip
    code, out, err = cli(capsys, "show", run, "--codes", str(codes), *base)
    assert code == 0, err
    assert (tmp_path / f"{run}-latent_space.png").is_file()
    assert "codes2d (dbench evaluate)" in seen[0].get_suptitle()
    assert [ax.get_title() for ax in seen[0].axes[:2]] == ["coloured by scale", "coloured by posX"]

    # the codes in the run's artifact folder are found without --codes
    folder = results / "artifacts" / run
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(codes, folder / "codes.npz")
    try:
        code, out, err = cli(capsys, "show", run, *base)
    finally:
        shutil.rmtree(folder)
    assert code == 0 and f"{run}-latent_space.png" in out, err


def test_show_on_evaluate_codes_that_are_not_2d_or_not_the_runs(toy_results, toy_data, capsys,
                                                                 tmp_path):  # fmt: skip
    results, ids = toy_results
    base = ("--results-dir", str(results), "-o", str(tmp_path))
    code, _, err = cli(capsys, "show", ids["codes3"], "--codes", str(ids["codes3_file"]), *base)
    assert code == 0 and "have 3 dimensions, not 2" in err
    code, _, err = cli(capsys, "show", ids["codes"], "--codes", str(ids["codes3_file"]), *base)
    one_line_error(code, err, "is not the codes run")
    code, _, err = cli(capsys, "show", ids["pca0"], "--codes", str(ids["codes_file"]), *base)
    one_line_error(code, err, "--codes applies to runs scored by dbench evaluate")
    assert not list(tmp_path.glob("*.png"))


# -- 7. data previews --------------------------------------------------------------------------
def test_data_previews_label_traversal_values_in_a_readable_title(tmp_path, monkeypatch):
    import dbench.reporting.plots as plots
    from dbench.reporting.preview import show

    seen, save = [], plots.save
    monkeypatch.setattr(plots, "save", lambda fig, path, dpi=150: seen.append(fig)
                        or save(fig, path, dpi))  # fmt: skip
    show(ToySquares(), tmp_path / "p.png", samples=4, cols=4)
    (fig,) = seen
    assert fig._suptitle.get_fontsize() >= 12
    assert "toy_squares (procedural)" in fig.get_suptitle()
    grid = np.array(fig.axes).reshape(-1, 4)
    assert [ax.get_xlabel() for ax in grid[0]] == [""] * 4  # random samples: no values
    assert [ax.get_xlabel() for ax in grid[1]] == ["0", "1", "2", ""]  # scale: 3 values
    assert [ax.get_xlabel() for ax in grid[2]] == ["0", "2", "5", "7"]  # posX: 8 values, 4 cols


def test_every_figure_the_readme_links_is_committed():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    linked = set(re.findall(r"\((docs/figures/[^)\s]+\.png)\)", (root / "README.md").read_text()))
    assert len(linked) >= 8  # the committed studies' figures (make figures)
    assert not [p for p in sorted(linked) if not (root / p).is_file()]
