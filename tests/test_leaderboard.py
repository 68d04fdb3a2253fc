"""Leaderboards: grouping on resolved hyperparameters and dataset settings, budgets kept apart,
ranks per dataset, headline scores, tidy CSV/JSON, LaTeX, the Higgins et al. 2017 comparison,
``load_runs``, and records that are old, broken or odd."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dbench.cli import app
from dbench.contracts import Budget
from dbench.engine.config import RunConfig
from dbench.engine.run import run_one
from dbench.engine.store import write_record
from dbench.errors import UserError
from dbench.registry import DATASETS, Entry
from dbench.reporting.aggregate import leaderboard
from dbench.reporting.published import compare_published, load_published
from dbench.reporting.runs import load_runs
from dbench.reporting.tables import render

REPO = Path(__file__).resolve().parents[1]
TINY = {"higgins.num_train": 200, "higgins.num_eval": 100, "higgins.batch_size": 8}
BLOBS = {"grid": 8}


def toy_entry() -> Entry:
    return Entry("toy_squares", "tests._toy:ToySquares", "tests (built-in)")


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> Path:
    """Real records from run_one: oracle x3 seeds, pca x3 (one typed ``n_components=10``, its
    default, as a sweep would), and oracle under another budget."""
    out = tmp_path_factory.mktemp("lb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(DATASETS._entries, "toy_squares", toy_entry())
        common = dict(dataset="toy_squares", metrics=["higgins"], settings=TINY,
                      results_dir=str(out))  # fmt: skip
        for seed in (0, 1, 2):
            run_one(RunConfig(model="oracle", seed=seed, **common))
        for seed in (0, 1):
            run_one(RunConfig(model="pca", model_kwargs={"n_samples": 200}, seed=seed, **common))
        typed = {"n_samples": 200, "n_components": 10}
        run_one(RunConfig(model="pca", model_kwargs=typed, seed=2, **common))
        run_one(RunConfig(model="oracle", seed=0, budget=Budget(steps=5), **common))
    return out


def record(run_id, *, model="betavae", dataset="dsprites", seed=0, scores=None, kwargs=None,
           params=None, budget=None, meta=True, training=None, data=None) -> dict:  # fmt: skip
    """A record dict following dbench.engine.store' schema (only the fields tables read)."""
    scores = scores or {"higgins": {"eval_accuracy": 0.5, "train_accuracy": 0.5}}
    rec = {
        "schema": 1,
        "run_id": run_id,
        "created": "2026-01-02T03:04:05+00:00",
        "config": {
            "dataset": dataset,
            "model": model,
            "model_kwargs": kwargs or {},
            "seed": seed,
            "dataset_kwargs": data or {},
        },  # fmt: skip
        "scores": scores,
        "dataset": {"source": "procedural", "factor_names": ["a", "b", "c", "d", "e"]},
        "model": {"name": model, "kwargs": kwargs or {}, "params": params or kwargs or {}},
        "budget": budget if budget is not None else {"steps": 100, "batch_size": 64},
        "training": training or {},
    }
    if meta:
        rec["metrics"] = {
            m: {"version": "1", "primary": next(iter(s)), "lower_is_better": []}
            for m, s in scores.items()
        }
    return rec


def write(folder: Path, *records: dict) -> Path:
    for rec in records:
        write_record(folder, rec)
    return folder


# -- grouping --------------------------------------------------------------------------------
def test_one_row_per_configuration_with_mean_std_and_n(real_runs):
    board = leaderboard(real_runs)
    runs = [json.loads(p.read_text()) for p in (real_runs / "runs").glob("*.json")]
    pca = [r["scores"]["higgins"]["eval_accuracy"] for r in runs if r["config"]["model"] == "pca"]

    assert len(board) == 3  # oracle (default budget), oracle (5 steps), pca
    row = board[(board["model"] == "pca")].iloc[0]
    # `pca` and a sweep's `pca n_components=10` resolve to the same hyperparameters: one row
    assert row["n"] == 3 and row["seeds"] == "0,1,2"
    assert row["n_components"] == 10 and row["n_samples"] == 200
    assert row["higgins.eval_accuracy.mean"] == pytest.approx(sum(pca) / 3)
    assert row["higgins.eval_accuracy.std"] == pytest.approx(pd.Series(pca).std())
    assert row["higgins.eval_accuracy.n"] == 3
    assert board.attrs["rank_by"] == "higgins.eval_accuracy"
    assert list(board["rank"]) == sorted(board["rank"])  # sorted best first
    assert board.iloc[0]["model"] == "oracle" and board.iloc[-1]["model"] == "pca"
    # no bare training columns beside the scores
    assert not {"beta", "recon_loss", "kl", "kwargs", "params"} & set(board.columns)


def test_records_without_resolved_params_group_on_the_registered_defaults(tmp_path):
    """Older records hold only the kwargs as typed: the registry fills in the defaults."""
    typed = record("t", model="pca", seed=0, kwargs={"n_components": 10})
    bare = record("b", model="pca", seed=1)
    other = record("o", model="pca", seed=2, kwargs={"n_components": 4})
    for rec in (typed, bare, other):
        del rec["model"]["params"]
    write(tmp_path, typed, bare, other)
    board = leaderboard(tmp_path)
    assert sorted(board["n"]) == [1, 2]
    assert sorted(board["n_components"]) == [4, 10]
    assert set(board["label"]) == {"pca n_components=10", "pca n_components=4"}


def test_runs_on_blobs_of_another_width_never_average_together(tmp_path):
    """Dataset kwargs (resolved) and the data checksum are part of a configuration."""
    common = dict(model="oracle", dataset="blobs", metrics=["higgins"], settings=TINY,
                  results_dir=str(tmp_path))  # fmt: skip
    run_one(RunConfig(dataset_kwargs=dict(BLOBS), seed=0, **common))
    run_one(RunConfig(dataset_kwargs={**BLOBS, "sigma": 4}, seed=1, **common))
    run_one(RunConfig(dataset_kwargs={**BLOBS, "sigma": 3.0}, seed=2, **common))  # the default
    board = leaderboard(tmp_path)
    assert sorted(board["n"]) == [1, 2]
    assert sorted(board["dataset_sigma"]) == [3, 4]
    assert list(board["rank"]) == [1, 1]  # two datasets as far as ranking goes
    text = render(board, "markdown")
    assert "### blobs (procedural, grid=8)" in text
    assert "### blobs (procedural, grid=8, sigma=4)" in text


def test_runs_with_different_budgets_never_average_together(real_runs):
    board = leaderboard(real_runs, model="oracle")
    assert sorted(board["n"]) == [1, 3]
    assert board["steps"].isna().sum() == 1 and set(board["steps"].dropna()) == {5}
    assert "budget" in render(board, "markdown")  # the budgets differ: a column says how


def test_filters_by_dataset_model_and_metric(real_runs, tmp_path):
    assert set(leaderboard(real_runs, model="pca")["model"]) == {"pca"}
    assert leaderboard(real_runs, dataset="nope").empty
    with pytest.raises(UserError, match="no run here was scored with metric 'mig'"):
        leaderboard(real_runs, metric="mig")

    write(tmp_path, record("a", scores={"higgins": {"eval_accuracy": 0.7}, "mig": {"mig": 0.2}}))
    only = leaderboard(tmp_path, metric="mig")
    assert [c for c in only if c.endswith(".mean")] == ["mig.mig.mean"]
    assert only.attrs["rank_by"] == "mig.mig"


def test_rank_follows_the_metrics_declared_direction(tmp_path):
    def err(run_id, model, value):
        rec = record(run_id, model=model, scores={"err": {"error": value, "aux": 1.0}})
        rec["metrics"]["err"]["primary"] = "error"
        rec["metrics"]["err"]["lower_is_better"] = ["error"]
        return rec

    write(tmp_path, err("a", "m1", 0.30), err("b", "m2", 0.10), err("c", "m3", 0.20))
    board = leaderboard(tmp_path, metric="err")
    assert list(board["model"]) == ["m2", "m3", "m1"]
    assert list(board["rank"]) == [1, 2, 3]
    assert board.attrs["lower_is_better"] is True
    assert "err ↓" in render(board, "markdown")
    assert "err.error ↓" in render(board, "markdown", all_scores=True)


def test_scores_measured_with_different_metric_settings_stay_apart(tmp_path):
    """One configuration, one row; the two protocols of higgins are two columns, never one
    average, and the caption says which settings the second one used."""
    a, b, c = record("a", seed=0), record("b", seed=1), record("c", seed=2)
    a["scores"]["higgins"]["eval_accuracy"] = 0.4
    b["scores"]["higgins"]["eval_accuracy"] = 0.9
    c["scores"]["higgins"]["eval_accuracy"] = 0.6
    b["config"]["metric_kwargs"] = {"higgins": {"num_train": 100}}
    c["config"]["metric_kwargs"] = {"higgins": {"num_train": 10_000}}  # the default, typed
    write(tmp_path, a, b, c)
    board = leaderboard(tmp_path)
    assert list(board["n"]) == [3]
    row = board.iloc[0]
    assert row["higgins.eval_accuracy.n"] == 2  # a and c: one protocol (the default)
    assert row["higgins.eval_accuracy.mean"] == pytest.approx(0.5)
    assert row["higgins#2.eval_accuracy.n"] == 1 and row["higgins#2.eval_accuracy.mean"] == 0.9
    text = render(board, "table")
    assert "higgins#2 v1 (num_train=100)" in " ".join(text.split())
    assert "metric settings" not in text


def test_ranks_count_within_each_dataset_and_tables_are_per_dataset(tmp_path):
    scores = {("dsprites", "m1"): 0.9, ("toy", "m2"): 0.8, ("dsprites", "m3"): 0.7,
              ("toy", "m4"): 0.6, ("dsprites", "m5"): 0.5, ("toy", "m6"): 0.4}  # fmt: skip
    write(tmp_path, *(
        record(f"{d}-{m}", model=m, dataset=d, scores={"higgins": {"eval_accuracy": v}})
        for (d, m), v in scores.items()
    ))  # fmt: skip
    board = leaderboard(tmp_path)
    assert list(board["dataset"]) == ["dsprites"] * 3 + ["toy"] * 3
    assert list(board["rank"]) == [1, 2, 3, 1, 2, 3]
    assert list(board["model"]) == ["m1", "m3", "m5", "m2", "m4", "m6"]

    md = render(board, "markdown")
    assert md.count("### ") == 2 and md.index("### dsprites") < md.index("### toy")
    ranks = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ")]
    assert [r for r in ranks if r != "rank"] == ["1", "2", "3", "1", "2", "3"]
    table = render(board, "table")
    assert table.index("dsprites (procedural)") < table.index("m5") < table.index("toy (")
    assert render(board, "latex").count(r"\begin{table}") == 2
    assert render(board, "html").count("<table") == 2


def test_tied_rows_sort_by_numeric_hyperparameters(tmp_path):
    write(tmp_path, *(
        record(f"b{beta}", kwargs={"beta": beta}, scores={"higgins": {"eval_accuracy": 0.5}})
        for beta in (16, 1, 4, 2.5)
    ))  # fmt: skip
    board = leaderboard(tmp_path)
    assert list(board["beta"]) == [1, 2.5, 4, 16]
    assert list(board["label"]) == ["betavae beta=1", "betavae beta=2.5", "betavae beta=4",
                                    "betavae beta=16"]  # fmt: skip
    tidy = pd.read_csv(io.StringIO(render(board, "csv")))
    assert tidy["beta"].tolist() == [1, 2.5, 4, 16]


# -- formats ---------------------------------------------------------------------------------
def default_suite_records() -> list[dict]:
    """Records scored with every default (cheap) metric: a sweep and baselines on dSprites."""
    from dbench.engine.resolve import default_metrics
    from dbench.registry import METRICS

    def scores(base: float) -> dict:
        out = {}
        for i, name in enumerate(default_metrics()):
            spec = METRICS.get(name)
            value = 12.345 if spec.lower_is_better else base - 0.01 * i
            out[name] = {spec.primary: value, "other_score": 0.5, "a_third_score": 0.25}
        return out

    configs = [("oracle", {}, {}), ("pca", {}, {}), ("ica", {}, {})]
    configs += [("betavae", {"beta": b}, {"steps": 300_000, "batch_size": 64}) for b in (1, 4, 16)]
    configs += [("factorvae", {}, {"steps": 300_000, "batch_size": 64})]
    recs = []
    for i, (model, kwargs, budget) in enumerate(configs):
        for seed in (0, 1, 2):
            rec = record(f"{model}-{i}-{seed}", model=model, seed=seed, kwargs=kwargs,
                         budget=budget or {"steps": None, "batch_size": None},
                         scores=scores(0.9 - 0.05 * i + 0.01 * seed))  # fmt: skip
            rec["metrics"] = {m: {"version": "1", **METRICS.get(m).info()} for m in rec["scores"]}
            recs.append(rec)
    return recs


def test_default_leaderboard_shows_headline_scores_and_fits_160_columns(tmp_path):
    from dbench.engine.resolve import default_metrics

    write(tmp_path, *default_suite_records())
    result = CliRunner().invoke(app, ["leaderboard", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) < 160, result.stdout
    for name in default_metrics():
        assert any(name in line for line in lines)
    assert "±" in result.stdout and "other_score" not in result.stdout

    everything = CliRunner().invoke(
        app, ["leaderboard", "--results-dir", str(tmp_path), "--all-scores"]
    )
    assert everything.exit_code == 0 and "other_score" in everything.stdout


def test_every_output_format_shows_the_rows(real_runs):
    board = leaderboard(real_runs)
    for fmt in ("table", "markdown", "latex", "html", "csv", "json"):
        text = render(board, fmt)
        assert "oracle" in text and "pca" in text, fmt

    md = render(board, "markdown").splitlines()
    header = next(line for line in md if line.startswith("| "))
    rule = md[md.index(header) + 1]  # the alignment row: rank right, model left
    assert [c.strip() for c in header.split("|")[1:3]] == ["rank", "model"]
    rank, model = (c.strip() for c in rule.split("|")[1:3])
    assert rank.endswith(":") and not model.endswith(":")
    assert len([line for line in md if line.startswith("| ")]) == 1 + len(board)
    assert "±" in render(board, "table")

    html = render(board, "html")
    assert html.count("<tr") == len(board) + 1 and "<caption>" in html
    assert "<strong>" in html  # the best value of each column

    parsed = pd.read_csv(io.StringIO(render(board, "csv")))  # full precision round-trips
    assert parsed["higgins.eval_accuracy_mean"].tolist() == pytest.approx(
        board["higgins.eval_accuracy.mean"].tolist()
    )


def test_latex_has_booktabs_caption_label_and_bold_best_values(tmp_path):
    write(tmp_path, *(
        record(f"r{i}", model=m, seed=s, scores={"higgins": {"eval_accuracy": v},
                                                 "mig": {"mig": 0.5 - v / 4}})
        for i, (m, s, v) in enumerate([("m1", 0, 0.9), ("m1", 1, 0.8), ("m2", 0, 0.6)])
    ))  # fmt: skip
    tex = render(leaderboard(tmp_path), "latex")
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"\caption{dsprites (procedural): mean $\pm$ std" in tex
    assert r"\label{tab:dbench-dsprites-procedural}" in tex
    rows = [line for line in tex.splitlines() if line.startswith(("1 &", "2 &"))]
    assert r"\textbf{0.850} $\pm$ 0.071" in rows[0]  # best Higgins score
    assert r"\textbf{0.350}" in rows[1]  # best MIG (m2)
    assert tex.count(r"\textbf{") == 2 and r"m1" in tex and r"\pm" in tex


# Every character LaTeX treats specially: & % $ # _ { } ~ ^ \\
HOSTILE_TEX = r"$\undefinedcmd{x}$ & 50% #1 a_b ~c ^d"
ESCAPED_TEX = (r"\$\textbackslash undefinedcmd\{x\}\$ \& 50\% \#1 a\_b \textasciitilde c "
               r"\textasciicircum d")  # fmt: skip


def test_latex_prints_record_text_as_text(tmp_path):
    """A value cannot run a command, end a cell or open math mode: each special character is
    escaped in cells, headers and the caption, and the best value stays bold."""
    from dbench.reporting.tables import render_display

    write(tmp_path, *(
        record(f"r{i}", kwargs={"note": note}, scores={"higgins": {"eval_accuracy": v}})
        for i, (note, v) in enumerate([(HOSTILE_TEX, 0.9), ("plain", 0.8)])
    ))  # fmt: skip
    rows = render(leaderboard(tmp_path), "latex").splitlines()
    assert rf"1 & betavae note={ESCAPED_TEX} & 1 & \textbf{{0.900}} \\" in rows

    tex = render_display(pd.DataFrame({HOSTILE_TEX: [HOSTILE_TEX]}), "latex", HOSTILE_TEX)
    assert rf"\caption{{{ESCAPED_TEX}}}" in tex
    assert tex.count(ESCAPED_TEX) == 3  # caption, header, cell
    assert r"\undefinedcmd" not in tex.replace(r"\textbackslash undefinedcmd", "")


def test_html_tables_print_record_text_as_text():
    from dbench.reporting.tables import html_table

    hostile = "<script>alert(1)</script>"
    page = html_table(pd.DataFrame({hostile: [hostile, "0.5"]}), hostile, best={(1, hostile)})
    assert "<script>" not in page and page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3
    assert "<strong>0.5</strong>" in page


def test_csv_and_json_are_tidy(tmp_path):
    write(
        tmp_path,
        record("b1", kwargs={"beta": 1}, scores={"higgins": {"eval_accuracy": 0.6}}),
        record("b2", kwargs={"beta": 1}, seed=1, scores={"higgins": {"eval_accuracy": 0.8}}),
        record(
            "p",
            model="pca",
            budget={"steps": None, "batch_size": None},
            scores={"higgins": {"eval_accuracy": 0.9}},
        ),  # fmt: skip
    )
    board = leaderboard(tmp_path)
    csv = pd.read_csv(io.StringIO(render(board, "csv")))
    columns = ["dataset", "source", "model", "beta", "n_components", "steps", "batch_size"]
    for col in [*columns, "n", "rank", "higgins.eval_accuracy_mean", "higgins.eval_accuracy_std"]:
        assert col in csv.columns, col
    assert not any(str(v).startswith(("{", "[")) for v in csv.to_numpy().ravel())
    assert csv["higgins.eval_accuracy_mean"].dtype == float  # no "–" placeholders
    assert csv.loc[csv["model"] == "pca", "beta"].isna().all()
    assert csv.loc[csv["model"] == "betavae", "steps"].tolist() == [100]

    rows = json.loads(render(board, "json"))
    assert isinstance(rows, list) and len(rows) == 2
    vae = next(r for r in rows if r["model"] == "betavae")
    assert {"dataset", "model", "rank", "n", "higgins.eval_accuracy_mean"} <= set(vae)
    assert vae["n"] == 2 and vae["seeds"] == [0, 1] and vae["beta"] == 1
    assert vae["higgins.eval_accuracy_mean"] == pytest.approx(0.7)
    pca = next(r for r in rows if r["model"] == "pca")
    assert pca["higgins.eval_accuracy_std"] is None and pca["beta"] is None

    long = pd.read_csv(io.StringIO(render(board, "csv", long=True)))
    assert {"metric", "score", "mean", "std"} <= set(long.columns)
    assert len(long) == 2 and set(long["score"]) == {"eval_accuracy"}  # configuration x score
    result = CliRunner().invoke(
        app, ["leaderboard", "--results-dir", str(tmp_path), "-f", "json", "--long"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["metric"] == "higgins"
    bad = CliRunner().invoke(app, ["leaderboard", "--results-dir", str(tmp_path), "--long"])
    assert isinstance(bad.exception, UserError) and "--long" in str(bad.exception)


def test_unknown_format_is_a_user_error(real_runs):
    with pytest.raises(UserError, match="unknown format"):
        render(leaderboard(real_runs), "xlsx")


# -- load_runs -------------------------------------------------------------------------------
def test_load_runs_is_one_typed_row_per_record_with_plain_columns(real_runs):
    runs = load_runs(real_runs)
    assert len(runs) == 7
    for col in ("run_id", "created", "dataset", "source", "model", "seed", "steps",
                "batch_size", "n_components", "n_samples", "higgins.eval_accuracy",
                "fit_seconds", "metric_seconds", "device", "dbench_version"):  # fmt: skip
        assert col in runs.columns, col
    assert isinstance(runs["created"].dtype, pd.DatetimeTZDtype)
    assert str(runs["seed"].dtype) == "Int64" and str(runs["n_components"].dtype) == "Int64"
    assert runs["higgins.eval_accuracy"].dtype == float
    assert runs["metric_seconds"].dtype == float and (runs["fit_seconds"] >= 0).all()
    assert set(runs.loc[runs["model"] == "pca", "n_components"]) == {10}
    assert not [c for c in runs.columns if c.startswith("_") or c in ("kwargs", "budget")]
    text = [v for c in runs.columns if runs[c].dtype == object for v in runs[c].dropna()]
    assert not any(isinstance(v, str) and v.startswith(("{", "[")) for v in text)

    long = load_runs(real_runs, long=True)
    assert list(long.columns[-3:]) == ["metric", "score", "value"]
    assert len(long) == 7 * 2 and set(long["score"]) == {"eval_accuracy", "train_accuracy"}


def test_load_runs_of_an_empty_folder_warns_and_keeps_the_columns(tmp_path):
    with pytest.warns(UserWarning, match="no run records under"):
        runs = load_runs(tmp_path)
    assert runs.empty and {"run_id", "created", "dataset", "model", "seed"} <= set(runs.columns)
    assert isinstance(runs["created"].dtype, pd.DatetimeTZDtype)
    assert str(runs["seed"].dtype) == "Int64" and runs["fit_seconds"].dtype == float
    with pytest.warns(UserWarning):
        long = load_runs(tmp_path, long=True)
    assert long.empty and list(long.columns[-3:]) == ["metric", "score", "value"]


# -- published comparison --------------------------------------------------------------------
def test_baseline_csv_has_the_spec_numbers_and_a_source():
    table = load_published("higgins2017").set_index("method")
    assert table.loc["beta-VAE (beta = 4)", "score"] == 99.23
    assert table.loc["ICA", "score_std"] == 10.6
    assert table.loc["VAE untrained", "dbench_model"] == "vae_untrained"
    assert math.isnan(table.loc["ground truth", "score_std"])
    assert len(table) == 9 and table["source"].str.contains("Higgins").all()
    assert table["source"].str.contains("Table 1").all()


def test_compare_higgins2017_puts_published_beside_measured(tmp_path):
    write(
        tmp_path,
        record("b0", seed=0, kwargs={"beta": 4}, scores={"higgins": {"eval_accuracy": 0.90}}),
        record("b1", seed=1, kwargs={"beta": 4}, scores={"higgins": {"eval_accuracy": 0.80}}),
        # betavae's default beta is 4: the resolved hyperparameters are the same configuration
        record("d0", seed=2, params={"beta": 4.0}, scores={"higgins": {"eval_accuracy": 0.7}}),
        record(
            "v0", model="betavae", kwargs={"beta": 1}, scores={"higgins": {"eval_accuracy": 0.6}}
        ),  # fmt: skip
        record("o0", model="oracle", budget={}, scores={"higgins": {"eval_accuracy": 1.0}}),
        record("t0", model="oracle", dataset="toy", scores={"higgins": {"eval_accuracy": 1.0}}),
    )
    table = compare_published(leaderboard(tmp_path), "higgins2017")
    beta = table[table["method"] == "beta-VAE (beta = 4)"].set_index("dbench")
    assert list(beta.index) == ["betavae beta=4"]
    assert beta.loc["betavae beta=4", "n"] == 3
    assert beta.loc["betavae beta=4", "measured_mean"] == pytest.approx(80.0)
    assert beta.loc["betavae beta=4", "measured"] == "80.00 ± 10.00"
    assert beta.loc["betavae beta=4", "difference"] == pytest.approx(80.0 - 99.23)
    truth = table[table["method"] == "ground truth"].iloc[0]
    assert truth["n"] == 1 and truth["measured_mean"] == 100.0  # the toy-dataset run is not it
    assert table[table["method"] == "InfoGAN"].iloc[0]["note"] == "not run"  # now in dbench
    assert table[table["method"] == "PCA"].iloc[0]["note"] == "not run"


def test_compare_groups_seeds_by_the_published_metric_alone(tmp_path):
    """A seed that also scored MIG is still the same configuration for the Higgins table."""
    both = {"higgins": {"eval_accuracy": 0.6}, "mig": {"mig": 0.1}}
    write(
        tmp_path,
        record("p0", model="pca", seed=0, scores={"higgins": {"eval_accuracy": 0.8}}),
        record("p1", model="pca", seed=1, scores=both),
    )
    assert len(leaderboard(tmp_path)) == 1  # scoring more metrics on a seed never splits a row
    ranked = leaderboard(tmp_path, metric="higgins")  # one metric: one configuration
    assert len(ranked) == 1 and ranked["higgins.eval_accuracy.n"].iloc[0] == 2
    result = compare_higgins2017(tmp_path, "--format", "csv")
    table = pd.read_csv(io.StringIO(result.output)).set_index("method")
    assert table.loc["PCA", "n"] == 2
    assert table.loc["PCA", "measured_mean"] == pytest.approx(70.0)


def compare_higgins2017(results, *args: str):
    """``dbench leaderboard --compare higgins2017`` on ``results``, which must succeed."""
    argv = ["leaderboard", "--results-dir", str(results), "--compare", "higgins2017", *args]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    return result


def test_compare_on_another_dataset_says_the_table_is_for_dsprites(tmp_path):
    write(tmp_path, record("p0", model="pca", dataset="blobs"))
    result = compare_higgins2017(tmp_path, "--dataset", "blobs")
    assert "note: the published table higgins2017 is for dSprites (dsprites)" in result.stderr
    assert "runs here: blobs" in result.stderr
    assert "not run on dsprites" in result.stdout


def test_cli_leaderboard_formats_output_compare_and_plots(real_runs, tmp_path):
    runner = CliRunner()
    target = tmp_path / "board.md"
    result = runner.invoke(app, ["leaderboard", "--results-dir", str(real_runs),
                                 "--format", "markdown", "--output", str(target)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert target.read_text().startswith("### toy_squares (procedural)")

    result = runner.invoke(app, ["leaderboard", "--results-dir", str(real_runs),
                                 "--compare", "higgins2017"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "99.23 ± 0.10" in result.output and "beta-VAE" in result.output

    plots = tmp_path / "plots"
    result = runner.invoke(app, ["leaderboard", "--results-dir", str(real_runs),
                                 "--plots", str(plots)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (plots / "seeds.png").read_bytes().startswith(b"\x89PNG")
    assert "score vs hyperparameter skipped" in result.output


def test_terminal_table_wider_than_the_terminal_loses_no_column_or_digit(tmp_path):
    """Many metrics: rich would squeeze model and scores to '0.6…' at the terminal's width."""
    scores = {f"metric{i}": {"a_long_score_name": 0.123456} for i in range(12)}
    write(tmp_path, record("w0", model="betavae", kwargs={"beta": 2}, scores=scores))
    text = render(leaderboard(tmp_path), "table", width=80)
    assert "betavae beta=2" in text and "dsprites" in text
    assert text.count("0.123") == 12 and "…" not in text


def test_dbench_help_imports_no_pandas_seaborn_or_torch():
    code = (
        "import sys; from typer.testing import CliRunner; from dbench.cli import app;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0;"
        "assert 'report' in r.output and 'show' in r.output;"
        "heavy = {'pandas', 'seaborn', 'matplotlib', 'torch'} & set(sys.modules);"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# -- robustness ------------------------------------------------------------------------------
def test_records_from_older_versions_still_load(tmp_path):
    """No metrics meta, no budget, no training, no model/dataset blocks: still a row."""
    old = {
        "run_id": "old-1",
        "config": {"dataset": "dsprites", "model": "pca", "seed": 0},
        "scores": {"higgins": {"train_accuracy": 0.9, "eval_accuracy": 0.8}},
    }
    write(tmp_path, old, record("new-1", model="pca", seed=1))
    board = leaderboard(tmp_path)
    assert len(board) == 2  # an unknown budget is not averaged with a known one
    old_row = board[board["run_ids"] == "old-1"].iloc[0]
    # its higgins version is unknown: a column of its own, never averaged with version 1
    assert old_row["higgins#2.eval_accuracy.mean"] == 0.8
    assert "higgins#2 (version unknown)" in " ".join(render(board, "table").split())
    assert old_row["n_components"] == 10  # resolved from the registered model
    # the headline comes from the registered metric when the record has no meta
    assert board.attrs["rank_by"] == "higgins.eval_accuracy"
    assert "unknown" in render(board, "markdown")
    assert (compare_published(board)["n"] > 0).any()


def test_corrupt_records_are_skipped_with_a_warning_naming_and_counting_them(tmp_path):
    write(tmp_path, record("good", model="pca"))
    runs = tmp_path / "runs"
    (runs / "truncated.json").write_text('{"run_id": "truncated", "config": {')
    (runs / "nodataset.json").write_text(json.dumps({"run_id": "x", "config": {}, "scores": {}}))
    (runs / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    odd = {**record("odd", model="pca"), "dataset": "dsprites"}  # a string, not a mapping
    (runs / "odd.json").write_text(json.dumps(odd))
    with pytest.warns(UserWarning, match=r"skipped 4 unreadable record") as caught:
        board = leaderboard(tmp_path)
    message = str(caught[0].message)
    assert "truncated.json" in message and "binary.json" in message
    assert "nodataset.json: invalid run id" not in message  # "x" is a valid id
    assert "nodataset.json: config.dataset: Field required" in message
    assert "odd.json: dataset: Input should be a valid dictionary" in message
    assert list(board["model"]) == ["pca"]
    assert board.attrs["skipped"] and len(board.attrs["skipped"]) == 4

    result = CliRunner().invoke(app, ["leaderboard", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0 and "pca" in result.stdout
    assert "warning: skipped 4 unreadable record(s)" in result.output


def test_empty_results_dir_says_so(tmp_path):
    assert leaderboard(tmp_path).empty
    result = CliRunner().invoke(app, ["leaderboard", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0 and "no runs recorded" in result.output


def test_training_option_adds_the_reconstruction_loss_mean_and_std(tmp_path):
    write(
        tmp_path,
        *(record(f"r{s}", seed=s, training={"recon_loss": 100.0 + 2 * s}) for s in range(3)),
        record("p0", model="pca", training={}),
    )
    board = leaderboard(tmp_path)
    text = render(board, "markdown", training=True)
    assert "recon. loss ↓" in text
    assert "102.0 ± 2.0" in text  # 100, 102, 104: mean 102, sample std 2
    assert "recon. loss" not in render(board, "markdown")  # only when asked
