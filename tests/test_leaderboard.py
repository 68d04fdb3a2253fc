"""Leaderboards: grouping over seeds, budgets kept apart, ranking direction, filters, output
formats, the Higgins et al. 2017 comparison, and records that are old, broken or odd."""

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
from dbench.reporting.tables import render

REPO = Path(__file__).resolve().parents[1]
TINY = {"higgins": {"num_train": 200, "num_eval": 100, "batch_size": 8}}


def toy_entry() -> Entry:
    return Entry("toy_squares", "tests._toy:ToySquares", "tests (built-in)")


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> Path:
    """Real records from run_one: oracle x3 seeds, pca x2, and oracle under another budget."""
    out = tmp_path_factory.mktemp("lb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(DATASETS._entries, "toy_squares", toy_entry())
        common = dict(dataset="toy_squares", metrics=["higgins"], metric_kwargs=TINY,
                      results_dir=str(out), show_progress=False)  # fmt: skip
        for seed in (0, 1, 2):
            run_one(RunConfig(model="oracle", seed=seed, **common))
        for seed in (0, 1):
            run_one(RunConfig(model="pca", model_kwargs={"n_samples": 200}, seed=seed, **common))
        run_one(RunConfig(model="oracle", seed=0, budget=Budget(steps=5), **common))
    return out


def record(run_id, *, model="betavae", dataset="dsprites", seed=0, scores=None, kwargs=None,
           params=None, budget=None, meta=True, training=None) -> dict:  # fmt: skip
    """A record dict following dbench.engine.store' schema (only the fields tables read)."""
    scores = scores or {"higgins": {"eval_accuracy": 0.5, "train_accuracy": 0.5}}
    rec = {
        "schema": 1,
        "run_id": run_id,
        "config": {"dataset": dataset, "model": model, "model_kwargs": kwargs or {}, "seed": seed},
        "scores": scores,
        "dataset": {"source": "procedural"},
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


# -- aggregation -----------------------------------------------------------------------------
def test_one_row_per_configuration_with_mean_std_and_n(real_runs):
    board = leaderboard(real_runs)
    runs = [json.loads(p.read_text()) for p in (real_runs / "runs").glob("*.json")]
    pca = [r["scores"]["higgins"]["eval_accuracy"] for r in runs if r["config"]["model"] == "pca"]

    assert len(board) == 3  # oracle (default budget), oracle (5 steps), pca
    row = board[(board["model"] == "pca")].iloc[0]
    assert row["n"] == 2 and row["seeds"] == "0,1"
    assert row["higgins.eval_accuracy.mean"] == pytest.approx(sum(pca) / 2)
    assert row["higgins.eval_accuracy.std"] == pytest.approx(pd.Series(pca).std())
    assert row["higgins.eval_accuracy.n"] == 2
    assert board.attrs["rank_by"] == "higgins.eval_accuracy"
    assert list(board["rank"]) == sorted(board["rank"])  # sorted best first
    assert board.iloc[0]["model"] == "oracle" and board.iloc[-1]["model"] == "pca"


def test_runs_with_different_budgets_never_average_together(real_runs):
    board = leaderboard(real_runs, model="oracle")
    assert sorted(board["n"]) == [1, 3]
    budgets = {json.loads(b).get("steps") for b in board["budget"]}
    assert budgets == {None, 5}


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
        rec["metrics"]["err"]["lower_is_better"] = ["error"]
        return rec

    write(tmp_path, err("a", "m1", 0.30), err("b", "m2", 0.10), err("c", "m3", 0.20))
    board = leaderboard(tmp_path, metric="err")
    assert list(board["model"]) == ["m2", "m3", "m1"]
    assert list(board["rank"]) == [1, 2, 3]
    assert board.attrs["lower_is_better"] is True
    assert "err.error ↓" in render(board, "markdown")


def test_scores_measured_with_different_metric_settings_stay_apart(tmp_path):
    a, b = record("a", seed=0), record("b", seed=1)
    b["config"]["metric_kwargs"] = {"higgins": {"num_train": 100}}
    write(tmp_path, a, b)
    assert sorted(leaderboard(tmp_path)["n"]) == [1, 1]


# -- formats ---------------------------------------------------------------------------------
def test_every_output_format_shows_the_rows(real_runs):
    board = leaderboard(real_runs)
    for fmt in ("table", "markdown", "latex", "html", "csv"):
        text = render(board, fmt)
        assert "oracle" in text and "pca" in text, fmt

    md = render(board, "markdown").splitlines()
    assert md[0].startswith("| rank | dataset | model |") and set(md[1]) <= set("|-:")
    assert len([line for line in md if line.startswith("| ")]) == 1 + len(board)
    assert "±" in render(board, "table")

    tex = render(board, "latex")
    assert r"\toprule" in tex and r"toy\_squares" in tex and "toy_squares" not in tex
    assert r"$\pm$" in tex and tex.count(r"\\") == len(board) + 1

    html = render(board, "html")
    assert html.count("<tr") == len(board) + 1 and "<caption>" in html

    parsed = pd.read_csv(io.StringIO(render(board, "csv")))  # full precision round-trips
    assert parsed["higgins.eval_accuracy.mean"].tolist() == pytest.approx(
        board["higgins.eval_accuracy.mean"].tolist()
    )


def test_unknown_format_is_a_user_error(real_runs):
    with pytest.raises(UserError, match="unknown format"):
        render(leaderboard(real_runs), "xlsx")


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
        # betavae's default beta is 4: resolved params must match too
        record("d0", seed=0, params={"beta": 4.0}, scores={"higgins": {"eval_accuracy": 0.7}}),
        record(
            "v0", model="betavae", kwargs={"beta": 1}, scores={"higgins": {"eval_accuracy": 0.6}}
        ),  # fmt: skip
        record("o0", model="oracle", budget={}, scores={"higgins": {"eval_accuracy": 1.0}}),
        record("t0", model="oracle", dataset="toy", scores={"higgins": {"eval_accuracy": 1.0}}),
    )
    table = compare_published(leaderboard(tmp_path), "higgins2017")
    beta = table[table["method"] == "beta-VAE (beta = 4)"].set_index("dbench")
    assert set(beta.index) == {"betavae beta=4", "betavae"}
    assert beta.loc["betavae beta=4", "n"] == 2
    assert beta.loc["betavae beta=4", "measured_mean"] == pytest.approx(85.0)
    assert beta.loc["betavae beta=4", "measured"] == "85.00 ± 7.07"
    assert beta.loc["betavae beta=4", "difference"] == pytest.approx(85.0 - 99.23)
    truth = table[table["method"] == "ground truth"].iloc[0]
    assert truth["n"] == 1 and truth["measured_mean"] == 100.0  # the toy-dataset run is not it
    assert table[table["method"] == "InfoGAN"].iloc[0]["note"].endswith("not in dbench")
    assert table[table["method"] == "PCA"].iloc[0]["note"] == "not run"


def test_compare_groups_seeds_by_the_published_metric_alone(tmp_path):
    """A seed that also scored MIG is still the same configuration for the Higgins table."""
    both = {"higgins": {"eval_accuracy": 0.6}, "mig": {"mig": 0.1}}
    write(
        tmp_path,
        record("p0", model="pca", seed=0, scores={"higgins": {"eval_accuracy": 0.8}}),
        record("p1", model="pca", seed=1, scores=both),
    )
    assert len(leaderboard(tmp_path)) == 2  # different metric sets: apart in the full board
    ranked = leaderboard(tmp_path, metric="higgins")  # one metric: one configuration
    assert len(ranked) == 1 and ranked["higgins.eval_accuracy.n"].iloc[0] == 2
    result = CliRunner().invoke(
        app, ["leaderboard", "--results-dir", str(tmp_path), "--compare", "higgins2017",
              "--format", "csv"]  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.output)).set_index("method")
    assert table.loc["PCA", "n"] == 2
    assert table.loc["PCA", "measured_mean"] == pytest.approx(70.0)


def test_cli_leaderboard_formats_output_compare_and_plots(real_runs, tmp_path):
    runner = CliRunner()
    target = tmp_path / "board.md"
    result = runner.invoke(app, ["leaderboard", "--results-dir", str(real_runs),
                                 "--format", "markdown", "--output", str(target)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert target.read_text().startswith("| rank |")

    result = runner.invoke(app, ["leaderboard", "--results-dir", str(real_runs),
                                 "--compare", "higgins2017"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "99.23 ± 0.10" in result.output and "beta-VAE" in result.output

    plots = tmp_path / "plots"
    result = runner.invoke(app, ["leaderboard", "--results-dir", str(real_runs),
                                 "--plots", str(plots)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (plots / "seeds.png").read_bytes().startswith(b"\x89PNG")


def test_terminal_table_wider_than_the_terminal_loses_no_column_or_digit(tmp_path):
    """Many metrics: rich would squeeze model and scores to '0.6…' at the terminal's width."""
    scores = {f"metric{i}": {"a_long_score_name": 0.123456} for i in range(12)}
    write(tmp_path, record("w0", model="betavae", kwargs={"beta": 4}, scores=scores))
    text = render(leaderboard(tmp_path), "table", width=80)
    assert "betavae beta=4" in text and "dsprites" in text
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
    assert old_row["higgins.eval_accuracy.mean"] == 0.8
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
    assert "nodataset.json: config has no dataset name" in message
    assert "odd.json: dataset block is not a mapping" in message
    assert list(board["model"]) == ["pca"]
    assert board.attrs["skipped"] and len(board.attrs["skipped"]) == 4

    result = CliRunner().invoke(app, ["leaderboard", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0 and "pca" in result.stdout
    assert "warning: skipped 4 unreadable record(s)" in result.output


def test_empty_results_dir_says_so(tmp_path):
    assert leaderboard(tmp_path).empty
    result = CliRunner().invoke(app, ["leaderboard", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0 and "no runs recorded" in result.output
