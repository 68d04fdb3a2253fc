"""Records you can trust: a results folder runs no code and steers no writes, scores are never
lost or mixed, and every mistake a user can make is one line with exit code 2.

Each test here failed on dbench 0.1 (pickle states, unchecked run ids, silent overwrites,
tracebacks). Runs are tiny: PCA on 8x8 blobs with the fast Higgins settings.
"""

from __future__ import annotations

import json
import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

from dbench.engine.config import RunConfig
from dbench.engine.run import run_one
from dbench.errors import UserError
from tests._cli import cli, one_line_error
from tests.conftest import FAST_HIGGINS

BASE = [
    "--model=pca",
    "--dataset=blobs",
    "--set=dataset.grid=8",
    "--set=n_samples=64",
    "--set=n_components=4",
    "--no-progress",
]
TINY = [*BASE, "--metrics=higgins", *(f"--set=higgins.{k}={v}" for k, v in FAST_HIGGINS.items())]


def tiny_config(results: Path, **kwargs) -> RunConfig:
    base = dict(
        model="pca",
        dataset="blobs",
        dataset_kwargs={"grid": 8},
        model_kwargs={"n_samples": 64, "n_components": 4},
        metrics=["higgins"],
        settings={f"higgins.{key}": value for key, value in FAST_HIGGINS.items()},
        results_dir=str(results),
    )
    return RunConfig(**{**base, **kwargs})


@pytest.fixture
def run(tmp_path):
    record = run_one(tiny_config(tmp_path / "results"))
    return tmp_path / "results", record


# -- security ----------------------------------------------------------------------------------


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["DBENCH_PWNED"]),))


def test_a_pickled_model_state_is_never_unpickled(run, capsys, tmp_path, monkeypatch):
    results, record = run
    marker = tmp_path / "pwned"
    monkeypatch.setenv("DBENCH_PWNED", str(marker))
    state = results / record["model"]["state_file"]
    state.write_bytes(pickle.dumps(_Payload()))
    for command in (
        ["score", record["run_id"], "--metrics", "higgins"],
        ["show", record["run_id"]],
    ):
        code, _, err = cli(capsys, *command, "--results-dir", str(results))
        one_line_error(code, err, "cannot load model state")
        assert not marker.exists(), "a results folder ran code"


def test_a_state_file_outside_the_run_folder_is_refused(run, capsys, tmp_path):
    results, record = run
    path = results / "runs" / f"{record['run_id']}.json"
    data = json.loads(path.read_text())
    elsewhere = tmp_path / "elsewhere.state"
    elsewhere.write_bytes(b"")
    for state_file in (str(elsewhere), "../elsewhere.state", "artifacts/other/model.state"):
        data["model"]["state_file"] = state_file
        path.write_text(json.dumps(data))
        code, _, err = cli(
            capsys, "score", record["run_id"], "--metrics=higgins", "--results-dir", str(results)
        )
        one_line_error(code, err, "not the run's own file")


def test_a_record_cannot_steer_writes_outside_the_results_root(run, capsys, tmp_path):
    results, record = run
    hostile = json.loads((results / "runs" / f"{record['run_id']}.json").read_text())
    hostile["run_id"] = "../../outside/escaped"
    (results / "runs" / "escaped.json").write_text(json.dumps(hostile))
    code, _, err = cli(
        capsys, "score", "escaped", "--metrics=higgins", "--results-dir", str(results)
    )
    assert code == 2 and "invalid run id" in err
    code, _, err = cli(
        capsys, "show", "escaped", "--results-dir", str(results), "--output", str(tmp_path / "figs")
    )
    assert code == 2
    assert not (tmp_path / "outside").exists() and not (results.parent / "outside").exists()


@pytest.mark.parametrize(
    "target", ["../../outside/target", "/etc/hostname", "/tmp/x.json", "runs/../../x.json"]
)
def test_score_reads_no_file_outside_the_results_root(run, capsys, target):
    results, _ = run
    code, _, err = cli(capsys, "score", target, "--metrics=higgins", "--results-dir", str(results))
    one_line_error(code, err, "")


@pytest.mark.parametrize("args", [["--name", ".."], ["--name", "a/b"], ["--resume", "../x"]])
def test_sweep_names_are_one_safe_folder(capsys, args):
    extra = [] if "--resume" in args else ["--model", "pca", "--dataset", "blobs"]
    code, _, err = cli(capsys, "sweep", *args, *extra)
    one_line_error(code, err, "sweep name")


# -- integrity -----------------------------------------------------------------------------------


def test_an_identical_run_is_not_retrained_or_overwritten(run, capsys):
    results, record = run
    path = Path(record["path"])
    rescored = run_one(tiny_config(results))
    assert rescored.get("existing") and rescored["scores"] == record["scores"]
    code, out, err = cli(capsys, "run", *TINY, "--results-dir", str(results))
    assert code == 0 and "already exists" in err and record["run_id"] in out
    code, _, err = cli(
        capsys,
        "score",
        record["run_id"],
        "--metrics=dci",
        "--set=dci.fast=true",
        "--results-dir",
        str(results),
    )
    assert code == 0, err
    with_dci = json.loads(path.read_text())
    code, _, _ = cli(capsys, "run", *TINY, "--results-dir", str(results))
    assert json.loads(path.read_text()) == with_dci  # the DCI score is not lost
    code, _, _ = cli(capsys, "run", *TINY, "--overwrite", "--results-dir", str(results))
    assert code == 0
    kept = list((results / "runs" / "replaced").glob(f"{record['run_id']}.*.json"))
    assert len(kept) == 1 and "dci" in json.loads(kept[0].read_text())["scores"]


def test_rescoring_with_the_same_settings_reproduces_exactly(run, capsys):
    results, record = run
    settings = [f"--set=higgins.{k}={v}" for k, v in FAST_HIGGINS.items()]
    code, out, err = cli(
        capsys,
        "score",
        record["run_id"],
        "--metrics=higgins",
        *settings,
        "--results-dir",
        str(results),
    )
    assert code == 0, err
    assert "reproduced exactly" in out
    after = json.loads(Path(record["path"]).read_text())
    assert after["scores"] == record["scores"] and "history" not in after


def test_rescoring_with_other_settings_groups_apart_and_loses_nothing(tmp_path, capsys):
    import dbench

    results = tmp_path / "results"
    first = run_one(tiny_config(results, seed=0))
    run_one(tiny_config(results, seed=1))
    code, out, err = cli(
        capsys,
        "score",
        first["run_id"],
        "--metrics=higgins",
        "--set=higgins.num_train=50",
        "--set=higgins.num_eval=40",
        "--results-dir",
        str(results),
    )
    assert code == 0 and "new settings" in out, err
    after = json.loads(Path(first["path"]).read_text())
    assert after["history"][0]["scores"] == first["scores"]["higgins"]
    board = dbench.leaderboard(results, metric="higgins")
    # one configuration, two protocols: two columns with one seed each, never one average
    assert list(board["n"]) == [2]
    assert list(board["higgins.eval_accuracy.n"]) == [1]
    assert list(board["higgins#2.eval_accuracy.n"]) == [1]


def _write(results: Path, record: dict, name: str | None = None) -> None:
    (results / "runs" / f"{name or record['run_id']}.json").write_text(json.dumps(record))


@pytest.mark.parametrize(
    "change, why",
    [
        ({"schema": 99}, "newer dbench"),
        ({"config": "seed"}, "config"),
        ({"run_id": 7}, "invalid run id"),
    ],
)
def test_malformed_or_future_records_are_skipped_with_a_warning(run, change, why):
    import dbench

    results, record = run
    bad = {**{k: v for k, v in record.items() if k != "path"}, **change}
    bad_seed = json.loads(json.dumps(bad))
    _write(results, bad, "odd")
    with pytest.warns(UserWarning, match=why):
        board = dbench.leaderboard(results)
    assert len(board) == 1 and int(board["higgins.eval_accuracy.n"].iloc[0]) == 1
    if isinstance(bad_seed.get("config"), dict):
        bad_seed["config"]["seed"] = "zero"
        bad_seed["run_id"] = "badseed"
        _write(results, bad_seed)
        with pytest.warns(UserWarning, match="seed"):
            dbench.leaderboard(results)


def test_concurrent_checkpoint_writes_never_collide(tmp_path):
    from dbench.models.training import _write_atomic

    errors = []

    def write(k):
        for i in range(50):
            try:
                _write_atomic({"step": np.int64(i), "k": k}, tmp_path / "checkpoint.pt")
            except Exception as exc:  # noqa: BLE001 - any failure is the bug
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_full_disk_leaves_the_previous_state_intact_and_no_debris(run, monkeypatch):
    import errno

    from dbench.models.training import _write_atomic

    results, record = run
    folder = results / "artifacts" / record["run_id"]
    state = folder / "model.state"
    before = state.read_bytes()

    def full(*_, **__):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    from dbench.models.baselines import PCAModel

    model = PCAModel(n_samples=64, n_components=4).load(state)
    with pytest.raises(UserError, match="No space left"):
        model.save(state)
    assert state.read_bytes() == before
    import torch

    monkeypatch.setattr(torch, "save", lambda *a, **k: full())
    (folder / "checkpoint.pt").write_bytes(b"good")
    with pytest.raises(UserError, match="cannot write checkpoint"):
        _write_atomic({"a": 1}, folder / "checkpoint.pt")
    assert (folder / "checkpoint.pt").read_bytes() == b"good"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.pt", "model.state"]


# -- every user error: one line, exit 2, no debris ------------------------------------------------


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--device", "cuda"], "device 'cuda' is not usable"),
        (["--device", "cuda:1"], "device 'cuda:1' is not usable"),
        (["--set", "dataset.device=cuda"], "device 'cuda' is not usable"),
        (["--set", "n_components=5000"], "n_components=5000 exceeds"),
        (["--set", "n_component=4"], "did you mean 'n_components'"),
        (["--metrics", "higgins_noshape"], "no factor named 'shape'"),
        (["--set", 'higgins.exclude_factors=["nope"]'], "unknown factors to exclude"),
        (["--set", "dci.importance=forest", "--metrics", "dci"], "importance must be one of"),
        (["--set", "higgins_noshape.bogus=1", "--metrics", "higgins_noshape"], "bogus"),
        (["--set", "higgins_noshape.num_train=0", "--metrics", "higgins_noshape"], "positive"),
    ],
)
def test_run_mistakes_are_one_line_and_leave_nothing(capsys, tmp_path, extra, needle):
    results = tmp_path / "results"
    base = BASE if "--metrics" in extra else TINY
    code, _, err = cli(capsys, "run", *base, *extra, "--results-dir", str(results))
    one_line_error(code, err, needle)
    assert "__init__" not in err
    assert not results.exists(), "a failed run left folders behind"


def test_exclude_factors_list_is_accepted_from_set(capsys, tmp_path):
    code, _, err = cli(
        capsys, "run", *TINY, "--set=higgins.exclude_factors=[]", "--results-dir", str(tmp_path)
    )
    assert code == 0, err


def test_unwritable_artifacts_folder_is_one_line(capsys, tmp_path):
    results = tmp_path / "results"
    (results / "runs").mkdir(parents=True)
    (results / "artifacts").write_text("a file where a folder belongs")
    code, _, err = cli(capsys, "run", *TINY, "--results-dir", str(results))
    one_line_error(code, err, "artifact folder")
    assert not list((results / "runs").iterdir())


def test_output_paths_under_a_file_are_one_line(run, capsys, tmp_path):
    results, record = run
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for args, needle in (
        (["report", "-o", str(blocker / "r.html"), "--results-dir", str(results)], "cannot write"),
        (["data", "show", "blobs", "--output", str(blocker / "b.png")], "cannot write"),
        (
            ["leaderboard", "--plots", str(blocker / "figs"), "--results-dir", str(results)],
            "cannot write",
        ),
        (["data", "prepare", "blobs", "--data-dir", str(blocker)], "blobs"),
    ):
        code, _, err = cli(capsys, *args)
        one_line_error(code, err, needle)


def test_malformed_record_given_to_score_is_one_line(run, capsys):
    results, record = run
    path = Path(record["path"])
    path.write_text(json.dumps({**json.loads(path.read_text()), "scores": "none"}))
    code, _, err = cli(
        capsys, "score", record["run_id"], "--metrics=higgins", "--results-dir", str(results)
    )
    one_line_error(code, err, "scores")


def test_no_progress_means_no_bar_and_resume_without_checkpoint_says_so(capsys, tmp_path):
    args = [
        "run",
        "--model=betavae",
        "--dataset=blobs",
        "--set=dataset.grid=8",
        "--steps=2",
        "--batch-size=4",
        "--set=latent_dim=2",
        "--set=arch=higgins_mlp",
        "--metrics=higgins",
        *(f"--set=higgins.{k}={v}" for k, v in FAST_HIGGINS.items()),
        "--no-progress",
        "--results-dir",
        str(tmp_path),
    ]
    code, _, err = cli(capsys, *args, "--resume")  # nothing to resume: an error, not step 0
    one_line_error(code, err, "has no training checkpoint to continue from")
    code, _, err = cli(capsys, *args)
    assert code == 0, err
    assert "━" not in err and "training" not in err.lower()


def test_interrupt_message_names_a_checkpoint_only_when_there_is_one(monkeypatch, capsys, tmp_path):
    from dbench.models.baselines import PCAModel

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(PCAModel, "fit", interrupted)
    code, _, err = cli(capsys, "run", *TINY, "--results-dir", str(tmp_path / "r"))
    assert code == 130
    assert "no training checkpoint had been written" in err and "--resume" not in err
    assert not (tmp_path / "r").exists()
