"""``dbench study`` on hand-built results trees whose answers are known: rank correlations,
variance shares, model selection regret, downstream correlations, mean vs sampled total
correlation, methods (``dipvae kind=i``), the one-line notes and the command's errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dbench.engine.store import write_record
from dbench.reporting.study import run_study, write_study
from dbench.reporting.study_stats import nested_sums, spearman, variance_shares
from dbench.reporting.study_text import summary_markdown
from tests._cli import cli, one_line_error

TC = "unsupervised.gaussian_total_correlation"
LOWER = {"unsupervised": ["gaussian_total_correlation"]}


def record(run_id, *, model="betavae", seed=0, kwargs=None, scores, dataset="dsprites",
           recon=None, representation=None) -> dict:  # fmt: skip
    """A schema-1 record (the fields the reporting layer reads), as tests/test_leaderboard."""
    kwargs = kwargs or {}
    rec = {
        "schema": 1,
        "run_id": run_id,
        "created": "2026-01-02T03:04:05+00:00",
        "config": {"dataset": dataset, "model": model, "model_kwargs": kwargs, "seed": seed,
                   "dataset_kwargs": {}},  # fmt: skip
        "scores": scores,
        "dataset": {"source": "procedural", "factor_names": ["a", "b"]},
        "model": {"name": model, "kwargs": kwargs, "params": kwargs},
        "budget": {"steps": 100, "batch_size": 64},
        "training": {} if recon is None else {"recon_loss": recon},
        "metrics": {
            m: {"version": "1", "primary": next(iter(s)), "lower_is_better": LOWER.get(m, [])}
            for m, s in scores.items()
        },
    }
    if representation is not None:
        rec["representation"] = representation
    return rec


def tree(folder: Path, records: list[dict]) -> Path:
    for rec in records:
        write_record(folder, rec)
    return folder


def only(studies):
    assert len(studies) == 1
    return studies[0]


def cell(table, **where):
    rows = table
    for key, value in where.items():
        rows = rows[rows[key] == value]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# -- statistics ------------------------------------------------------------------------------
def test_spearman_is_one_for_monotone_pairs_and_needs_three_runs():
    assert spearman([1, 2, 3, 4], [1, 8, 27, 64]) == (pytest.approx(1.0), 4)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == (pytest.approx(-1.0), 4)
    # ties share their average rank: x ranks 1, 2.5, 2.5, 4 -> rho = 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4])[0] == pytest.approx(4.5 / math.sqrt(22.5))
    rho, n = spearman([1, 2, math.nan], [1, 2, 3])
    assert math.isnan(rho) and n == 2


def test_nested_sums_add_up():
    import pandas as pd

    frame = pd.DataFrame({"method": ["a", "a", "a", "b"], "config": ["x", "x", "y", "z"],
                          "s": [1.0, 3.0, 5.0, 10.0]})  # fmt: skip
    sums = nested_sums(frame, "s")
    assert sums["method"] + sums["config"] + sums["seed"] == pytest.approx(sums["total"])
    assert sums["seed"] == pytest.approx(2.0)  # (1-2)^2 + (3-2)^2
    # all scores at once, each over the runs that have it: the same sums
    frame["t"] = [2.0, math.nan, 7.0, 1.0]
    shares = variance_shares(frame, ["s", "t"]).set_index("score")
    for column in ("s", "t"):
        one = nested_sums(frame, column)
        assert shares.loc[column, "ss_total"] == pytest.approx(one["total"])
        assert shares.loc[column, "seed"] == pytest.approx(one["seed"] / one["total"])
        assert shares.loc[column, "method"] == pytest.approx(one["method"] / one["total"])
    assert shares.loc["t", "n_runs"] == 3 and shares.loc["t", "n_configs"] == 3


# -- the analyses on results trees -----------------------------------------------------------
def test_metrics_monotone_in_each_other_correlate_one(tmp_path):
    records = []
    for i, beta in enumerate([1, 2, 4, 8, 16]):
        x = 0.1 * (i + 1)
        records.append(record(f"r{i}", kwargs={"beta": beta}, scores={
            "higgins": {"eval_accuracy": x},
            "mig": {"mig": x**3},
            "modularity": {"modularity": 1 - x},
        }))  # fmt: skip
    study = only(run_study(tree(tmp_path, records)))
    corr = study.tables["correlation"]
    assert cell(corr, a="higgins.eval_accuracy", b="mig.mig")["rho"] == pytest.approx(1.0)
    modular = cell(corr, a="higgins.eval_accuracy", b="modularity.modularity")
    assert modular["rho"] == pytest.approx(-1.0) and modular["n"] == 5
    text = summary_markdown([study])
    assert "| higgins | 1.00 | 1.00 | -1.00 |" in text  # columns: higgins, mig, modularity


def test_a_method_effect_without_seed_noise_is_all_method(tmp_path):
    records = [
        record(f"{m}{s}", model=m, seed=s, kwargs=kw, scores={"higgins": {"eval_accuracy": v}})
        for m, kw, v in (("betavae", {"beta": 4}, 0.2), ("factorvae", {"gamma": 10}, 0.8))
        for s in range(3)
    ]
    var = only(run_study(tree(tmp_path, records))).tables["variance"]
    row = cell(var, score="higgins.eval_accuracy")
    assert (row["method"], row["hyperparameter"], row["seed"]) == pytest.approx((1.0, 0.0, 0.0))
    assert row["n_runs"] == 6 and row["n_methods"] == 2 and row["n_configs"] == 2


def test_hyperparameter_and_seed_shares_are_the_hand_computed_ones(tmp_path):
    # beta=1: 0.1, 0.3 (mean 0.2); beta=4: 0.5, 0.7 (mean 0.6); grand mean 0.4
    # total = 0.2; between configurations 4 * 0.04 = 0.16; seeds 0.04
    values = {(1, 0): 0.1, (1, 1): 0.3, (4, 0): 0.5, (4, 1): 0.7}
    records = [record(f"b{b}s{s}", seed=s, kwargs={"beta": b},
                      scores={"higgins": {"eval_accuracy": v}})
               for (b, s), v in values.items()]  # fmt: skip
    study = only(run_study(tree(tmp_path, records)))
    row = cell(study.tables["variance"], score="higgins.eval_accuracy")
    assert (row["method"], row["hyperparameter"], row["seed"]) == pytest.approx((0, 0.8, 0.2))
    assert "| Higgins score (eval accuracy) | 0% | 80% | 20% | 4 |" in summary_markdown([study])
    assert any("one method only" in n for n in study.notes)


def test_configurations_with_one_seed_and_udr_stay_out_of_the_variance_shares(tmp_path):
    """A configuration with one seed has no seed variation to separate: counting it would move
    its seed's share into the hyperparameter's. The shares above come out unchanged when
    beta=16 (one seed, far off) joins; UDR, computed across seeds, is left out, under every
    protocol it was scored with."""
    values = {(1, 0): 0.1, (1, 1): 0.3, (4, 0): 0.5, (4, 1): 0.7, (16, 0): 0.95}
    records = [record(f"b{b}s{s}", seed=s, kwargs={"beta": b},
                      scores={"higgins": {"eval_accuracy": v}, "udr": {"udr": b / 20}})
               for (b, s), v in values.items()]  # fmt: skip
    for rec in records[2:4]:  # UDR over three peers there: a second protocol, column udr#2
        rec["metrics"]["udr"]["settings"] = {"peers": 3}
    study = only(run_study(tree(tmp_path, records)))
    assert {"udr.udr", "udr#2.udr"} <= set(study.scores)
    var = study.tables["variance"]
    row = cell(var, score="higgins.eval_accuracy")
    assert (row["method"], row["hyperparameter"], row["seed"]) == pytest.approx((0, 0.8, 0.2))
    assert row["n_runs"] == 4 and row["n_configs"] == 2
    assert list(var["score"]) == ["higgins.eval_accuracy"]
    assert any("over the 4 runs of the 2 configurations with two seeds or more; 1 with one "
               "seed left out" in n for n in study.notes)  # fmt: skip


def test_unsupervised_selection_picks_a_known_configuration_and_regret_is_hand_computed(tmp_path):
    # per beta: (Gaussian TC, Higgins, reconstruction loss); two seeds with equal scores
    grid = {1: (3.0, 0.9, 10.0), 4: (1.0, 0.6, 20.0), 16: (2.0, 0.7, 30.0)}
    records = [
        record(f"b{b}s{s}", seed=s, kwargs={"beta": b}, recon=recon, scores={
            "higgins": {"eval_accuracy": acc}, "unsupervised": {"gaussian_total_correlation": tc}})
        for b, (tc, acc, recon) in grid.items() for s in (0, 1)
    ]  # fmt: skip
    study = only(run_study(tree(tmp_path, records)))
    table = study.tables["selection"]
    by_tc = cell(table, selector=TC, target="higgins.eval_accuracy")
    assert by_tc["picked_value"] == 4  # the lowest total correlation
    assert by_tc["selected"] == pytest.approx(0.6) and by_tc["oracle"] == pytest.approx(0.9)
    assert by_tc["regret"] == pytest.approx(0.3)
    assert by_tc["random"] == pytest.approx(2.2 / 3)
    assert by_tc["random_regret"] == pytest.approx(0.9 - 2.2 / 3)
    by_recon = cell(table, selector="recon_loss", target="higgins.eval_accuracy")
    assert by_recon["picked_value"] == 1 and by_recon["regret"] == pytest.approx(0.0)
    assert set(table["target"]) == {"higgins.eval_accuracy"}  # TC is no target


def test_without_an_unsupervised_score_selection_says_so_in_one_line(tmp_path):
    records = [record(f"b{b}", kwargs={"beta": b}, scores={"higgins": {"eval_accuracy": b / 10}})
               for b in (1, 4)]  # fmt: skip
    study = only(run_study(tree(tmp_path, records)))
    assert "selection" not in study.tables
    assert sum(n.startswith("model selection: needs an unsupervised score") for n in study.notes)


def test_dipvae_kinds_are_two_methods_with_lambda_od_as_strength(tmp_path):
    records = [
        record(f"{k}{lam}", model="dipvae", kwargs={"kind": k, "lambda_od": lam},
               scores={"higgins": {"eval_accuracy": lam / 100}})
        for k in ("i", "ii") for lam in (1, 10)
    ]  # fmt: skip
    study = only(run_study(tree(tmp_path, records)))
    assert study.strengths == {"dipvae kind=i": "lambda_od", "dipvae kind=ii": "lambda_od"}
    assert sorted(study.frame["value"]) == [1, 1, 10, 10]


def test_downstream_accuracy_correlates_with_a_monotone_metric(tmp_path):
    records = [
        record(f"b{b}", kwargs={"beta": b}, scores={
            "higgins": {"eval_accuracy": b / 20},
            "downstream": {"logreg_accuracy": 1 - b / 20, "logreg_accuracy_100": 1 - b / 20,
                           "logreg_accuracy_10000": b / 40}})
        for b in (1, 2, 4, 8)
    ]  # fmt: skip
    table = only(run_study(tree(tmp_path, records))).tables["downstream"]
    hundred = cell(table, metric="higgins.eval_accuracy", target="downstream.logreg_accuracy_100")
    assert hundred["rho"] == pytest.approx(-1.0) and hundred["n"] == 4
    most = cell(table, metric="higgins.eval_accuracy", target="downstream.logreg_accuracy_10000")
    assert most["rho"] == pytest.approx(1.0)
    assert "downstream.logreg_accuracy" not in set(table["metric"])  # not against itself


def test_mean_and_sampled_total_correlation_pair_up_by_run(tmp_path):
    records = []
    for b in (1, 4, 16):
        mean = {"gaussian_total_correlation": 10 / b}
        scores = {"higgins": {"eval_accuracy": 0.5}, "unsupervised": mean}
        records.append(record(f"b{b}", kwargs={"beta": b}, scores=scores))
        sampled = {"unsupervised": {"gaussian_total_correlation": 20 / b}}
        records.append(record(f"b{b}-sampled", kwargs={"beta": b}, scores=sampled,
                              representation={"kind": "sampled"}))  # fmt: skip
    study = only(run_study(tree(tmp_path, records)))
    assert len(study.frame) == 3  # sampled records are not runs of their own
    table = study.tables["representation_tc"].sort_values("value")
    assert list(table["tc_mean"]) == pytest.approx([10, 2.5, 0.625])
    assert list(table["tc_sampled"]) == pytest.approx([20, 5, 1.25])


def test_without_sampled_records_the_representation_analysis_is_one_line(tmp_path):
    records = [record(f"b{b}", kwargs={"beta": b}, scores={"higgins": {"eval_accuracy": 0.1}})
               for b in (1, 4)]  # fmt: skip
    study = only(run_study(tree(tmp_path, records)))
    lines = [n for n in study.notes if n.startswith("mean vs sampled representation")]
    assert lines == ["mean vs sampled representation: no record was scored on a sampled "
                     "representation"]  # fmt: skip


# -- the command -----------------------------------------------------------------------------
def test_one_seed_prints_the_needs_line_and_draws_no_empty_figure(tmp_path, capsys):
    records = [record(f"b{b}", kwargs={"beta": b}, scores={
        "higgins": {"eval_accuracy": b / 20}, "mig": {"mig": b / 30}})
        for b in (1, 2, 4)]  # fmt: skip
    root = tree(tmp_path / "res", records)
    code, out, err = cli(capsys, "study", "--results-dir", str(root))
    assert code == 0, err
    assert ("- variance decomposition: needs two seeds or more of a configuration (every "
            "configuration here has one seed)") in out  # fmt: skip
    assert "- score per method: needs two methods or more (only betavae)" in out
    folder = root / "study" / "dsprites"
    assert not (folder / "variance.csv").exists() and not (folder / "per_method.png").exists()
    assert (folder / "correlation.png").exists() and (folder / "strength_higgins.png").exists()
    info = json.loads((folder / "study.json").read_text())
    assert any(n.startswith("variance decomposition: needs") for n in info["notes"])
    assert (folder / "summary.md").read_text() in out


def test_the_command_writes_tidy_tables_and_figures(tmp_path, capsys):
    records = [
        record(f"{m}{v}s{s}", model=m, seed=s, kwargs={key: v}, recon=v + s, scores={
            "higgins": {"eval_accuracy": v / 100 + s / 1000}, "mig": {"mig": v / 200},
            "unsupervised": {"gaussian_total_correlation": 1 / v}})
        for m, key in (("betavae", "beta"), ("factorvae", "gamma"))
        for v in (2, 8) for s in (0, 1)
    ]  # fmt: skip
    root = tree(tmp_path / "res", records)
    out_dir = tmp_path / "out"
    code, out, err = cli(capsys, "study", "--results-dir", str(root), "-o", str(out_dir))
    assert code == 0, err
    folder = out_dir / "dsprites"
    for name in ("runs", "correlation", "variance", "selection"):
        assert (folder / f"{name}.csv").exists()
        assert isinstance(json.loads((folder / f"{name}.json").read_text()), list)
    for name in ("correlation", "per_method", "strength_higgins", "strength_mig"):
        assert (folder / f"{name}.png").stat().st_size > 1000
    assert "Spearman rank correlation" in out and "Share of each headline score" in out
    assert "8 runs, 2 methods, 4 configurations, 2 seeds each" in out


def test_an_unknown_dataset_is_one_line_exit_two(tmp_path, capsys):
    root = tree(tmp_path, [record("a", scores={"higgins": {"eval_accuracy": 0.5}})])
    code, _, err = cli(capsys, "study", "--results-dir", str(root), "--dataset", "shapes3d")
    one_line_error(code, err, "no runs of dataset 'shapes3d'")


def test_an_empty_results_root_is_one_line_exit_two(tmp_path, capsys):
    code, _, err = cli(capsys, "study", "--results-dir", str(tmp_path))
    one_line_error(code, err, "no run records")


def test_write_study_refuses_an_unwritable_folder_in_one_line(tmp_path):
    from dbench.errors import UserError

    records = [record(f"b{b}", kwargs={"beta": b}, scores={"higgins": {"eval_accuracy": 0.1}})
               for b in (1, 4)]  # fmt: skip
    study = only(run_study(tree(tmp_path / "res", records)))
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot write the study"):
        write_study(study, tmp_path / "file" / "sub", "text", figures=False)


def test_the_report_shows_the_study_where_several_methods_ran(tmp_path):
    from dbench.reporting.html import build_report

    records = [
        record(f"{m}{s}", model=m, seed=s, kwargs=kw, scores={"higgins": {"eval_accuracy": v}})
        for m, kw, v in (("betavae", {"beta": 4}, 0.2), ("factorvae", {"gamma": 10}, 0.8))
        for s in range(3)
    ]
    root = tree(tmp_path / "two", records)
    page = build_report(root, compare=None, per_run=0)
    assert "<h2>Study: dSprites" in page and "2 methods" in page
    # the variance table: all of the score's variance between the methods
    assert '<td>Higgins score (eval accuracy)</td><td class="num">100%</td>' in page
    assert "Study:" not in build_report(root, compare=None, per_run=0, study=False)

    one = tree(tmp_path / "one", [r for r in records if r["model"] == "betavae"])
    assert "Study:" not in build_report(one, compare=None, per_run=0)  # nothing to compare


def test_a_log_strength_axis_is_labelled_with_the_values_swept(tmp_path):
    """A log axis's default tick labels are mathtext, which dbench draws as plain text (record
    values are never parsed): the ticks must be the swept values, written plainly."""
    from dbench.reporting.study_figures import strength_figure

    records = [record(f"c{c}s{s}", model="annealedvae", seed=s, kwargs={"c_max": c},
                      scores={"higgins": {"eval_accuracy": 0.1 * i + 0.01 * s}})
               for i, c in enumerate((5, 25, 100)) for s in (0, 1)]  # fmt: skip
    study = only(run_study(tree(tmp_path, records)))
    fig = strength_figure(study, "higgins.eval_accuracy")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "25", "100"]


def test_the_readme_quotes_what_dbench_study_prints_on_the_committed_slice(tmp_path, capsys):
    """The README's Locatello 2019 section is ``dbench study``'s output on the committed
    records, verbatim: a record added without regenerating the README fails here."""
    root = Path(__file__).resolve().parents[1]
    code, out, err = cli(
        capsys, "study", "--results-dir", str(root / "results/studies/locatello2019_dsprites"),
        "-o", str(tmp_path), "--no-figures",
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() and out.strip() in (root / "README.md").read_text()
