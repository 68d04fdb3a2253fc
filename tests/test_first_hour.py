"""What a researcher meets in the first hour (issue 29): an interrupt says exactly what was
kept, ``--resume`` without a checkpoint is an error, and the checkpoint interval is a setting
that is recorded but is not part of the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbench.models.vae import VAE
from tests._cli import cli, one_line_error

RUN = [
    "run", "--model=betavae", "--dataset=blobs", "--set=dataset.grid=8", "--set=latent_dim=2",
    "--set=arch=higgins_mlp", "--metrics=mig", "--set=mig.fast=true", "--steps=6",
    "--batch-size=4", "--precision=fp32", "--no-progress",
]  # fmt: skip


@pytest.fixture
def interrupt_at(monkeypatch):
    """Ctrl-C during the given (1-based) training step."""

    def arm(step: int) -> None:
        calls = {"n": 0}
        original = VAE.train_step

        def train_step(self, batch):
            calls["n"] += 1
            if calls["n"] == step:
                raise KeyboardInterrupt
            return original(self, batch)

        monkeypatch.setattr(VAE, "train_step", train_step)

    return arm


def _record(results: Path) -> dict:
    (path,) = (results / "runs").glob("*.json")
    return json.loads(path.read_text())


def test_an_interrupt_before_any_checkpoint_keeps_nothing_and_resume_says_so(
    tmp_path, capsys, interrupt_at, one_thread
):
    results = tmp_path / "r"
    interrupt_at(3)
    code, _, err = cli(capsys, *RUN, "--results-dir", str(results))
    assert code == 130 and "nothing was kept" in err and "kept at" not in err, err
    assert not list(results.glob("artifacts/*/*")), "an empty curve is not something kept"
    code, _, err = cli(capsys, *RUN, "--resume", "--results-dir", str(results))
    one_line_error(code, err, "has no training checkpoint to continue from")
    assert not (results / "runs").exists()


def test_the_checkpoint_interval_is_a_setting_recorded_outside_the_identity(
    tmp_path, capsys, interrupt_at, one_thread, monkeypatch
):
    results = tmp_path / "r"
    fresh = tmp_path / "fresh"
    code, _, err = cli(capsys, *RUN, "--results-dir", str(fresh))
    assert code == 0, err
    assert _record(fresh)["training"]["resumed_from_step"] is None  # nothing was resumed

    interrupt_at(4)
    every = "--set=budget.checkpoint_every=2"
    code, _, err = cli(capsys, *RUN, every, "--results-dir", str(results))
    assert code == 130 and "checkpoint.pt" in err and "--resume" in err, err
    monkeypatch.undo()
    code, _, err = cli(capsys, *RUN, every, "--resume", "--results-dir", str(results))
    assert code == 0, err
    resumed, plain = _record(results), _record(fresh)
    assert resumed["training"]["resumed_from_step"] == 2
    assert resumed["training"]["checkpoint_every"] == 2
    assert resumed["budget"]["checkpoint_every"] == 2
    assert resumed["run_id"] == plain["run_id"]  # the interval is not part of what ran
    assert resumed["scores"] == plain["scores"]  # exact resume


@pytest.mark.parametrize("value", ["0", "true", "-3", "2.5"])
def test_bad_checkpoint_intervals_are_one_line(tmp_path, capsys, value):
    code, _, err = cli(capsys, *RUN, f"--set=budget.checkpoint_every={value}",
                       "--results-dir", str(tmp_path / "r"))  # fmt: skip
    one_line_error(code, err, "checkpoint_every")


def test_compare_marks_rows_scored_off_the_papers_protocol_and_shows_both_differences(tmp_path):
    from dbench.reporting.aggregate import filtered_runs, load_records
    from dbench.reporting.published import comparison, comparison_caption, comparison_display
    from tests.test_leaderboard import record, write

    scores = {"higgins": {"eval_accuracy": 0.8}, "higgins_noshape": {"eval_accuracy": 0.9}}
    paper = record("p0", model="pca", seed=0, scores=scores)
    write(tmp_path, paper)
    runs, meta = filtered_runs(load_records(tmp_path)[0], None, None, None)
    table = comparison(runs, meta, "higgins2017")
    shown = comparison_display(table).set_index("method")
    assert "*" not in shown.loc["PCA", "measured (mean ± std)"]
    assert shown.loc["PCA", "difference"] == f"{80 - 84.9:+.2f}"
    assert shown.loc["PCA", "difference (shape left out)"] == f"{90 - 84.9:+.2f}"
    assert "paper" not in comparison_caption(table)

    other = record("p1", model="pca", seed=1, scores=scores)
    other["config"]["metric_kwargs"] = {"higgins": {"num_train": 500}}
    paper["config"]["metric_kwargs"] = {"higgins": {"num_train": 500}}
    write(tmp_path, paper, other)
    runs, meta = filtered_runs(load_records(tmp_path)[0], None, None, None)
    table = comparison(runs, meta, "higgins2017")
    shown = comparison_display(table).set_index("method")
    assert shown.loc["PCA", "measured (mean ± std)"].endswith("*")
    assert "num_train=500 (paper 10000)" in comparison_caption(table)


def test_a_full_disk_at_record_time_leaves_no_empty_runs_folder_nor_orphan_state(
    tmp_path, capsys, monkeypatch, one_thread
):
    import tempfile

    real = tempfile.mkstemp

    def full(*args, dir=None, **kwargs):  # the disk fills up just as the record is written
        if dir is not None and dir.name == "runs":
            raise OSError(28, "No space left on device")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", full)
    results = tmp_path / "r"
    code, _, err = cli(capsys, *RUN, "--set=budget.checkpoint_every=3", "--results-dir",
                       str(results))  # fmt: skip
    one_line_error(code, err, "No space left on device")
    assert "checkpoint is kept" in err
    assert not (results / "runs").exists()
    assert not list(results.glob("artifacts/*/model.state"))
    assert list(results.glob("artifacts/*/checkpoint.pt"))


def test_the_python_evaluate_shows_progress_in_a_terminal_by_default(monkeypatch, tmp_path):
    import dbench
    from dbench import progress

    seen = []
    real = progress.quiet

    def spy(enabled=True):
        seen.append(enabled)
        return real(enabled)

    monkeypatch.setattr("dbench.engine.evaluate.quiet", spy)
    args = dict(dataset="blobs", metrics=["mig"], settings={"dataset.grid": 8},
                results_dir=tmp_path / "r")  # fmt: skip
    encoder = lambda x: x.flatten(1)[:, :3]  # noqa: E731
    monkeypatch.setattr(progress, "interactive", lambda: True)
    monkeypatch.setattr("dbench.engine.evaluate.interactive", lambda: True)
    dbench.evaluate(encoder, name="a", **args)
    dbench.evaluate(encoder, name="b", progress=False, **args)
    monkeypatch.setattr("dbench.engine.evaluate.interactive", lambda: False)
    dbench.evaluate(encoder, name="c", **args)
    assert seen == [False, True, True]  # quiet(False): bars on in a terminal; off when asked


def test_ctrl_c_in_a_command_that_does_not_report_it_itself_is_still_one_line(
    tmp_path, capsys, monkeypatch
):
    """Typer turns Ctrl-C into a bare exit 130; outside run and sweep (which say what they
    kept) the user still gets one line saying what the interrupt left behind."""
    import dbench.reporting.aggregate as aggregate
    from tests.test_leaderboard import record, write

    write(tmp_path, record("p0", model="pca", seed=0, scores={"mig": {"discrete_mig": 0.1}}))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(aggregate, "load_records", interrupted)
    code, out, err = cli(capsys, "leaderboard", "--results-dir", str(tmp_path))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 130 and out == "", (out, err)
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), err
    assert "half-written" in lines[0]
