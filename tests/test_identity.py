"""One run, one identity: sameness decided from what ran (resolved values, data checksum, encoder
function), never from how a command was typed; leaderboards count each seed of a configuration
once; the committed studies rebuild unchanged; concurrent identical runs never replace each
other's records."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dbench.contracts import Budget, HasParams
from dbench.engine.config import RunConfig
from dbench.engine.identity import data_kwargs, identity_of_record, make_identity, params_of
from dbench.engine.lock import lock_path
from dbench.engine.record import json_schema
from dbench.engine.resolve import resolve_run
from dbench.engine.run import run_one
from dbench.registry import DATASETS, MODELS
from dbench.reporting.aggregate import leaderboard
from dbench.reporting.tables import render
from tests._cli import cli, one_line_error
from tests.conftest import FAST_HIGGINS

REPO = Path(__file__).resolve().parents[1]
PCA = [
    "run", "--model=pca", "--dataset=blobs", "--set=dataset.grid=8", "--set=n_samples=64",
    "--no-progress", "--metrics=higgins",
    *(f"--set=higgins.{k}={v}" for k, v in FAST_HIGGINS.items()),
]  # fmt: skip


def pca_config(results: Path, **kwargs) -> RunConfig:
    base = dict(
        model="pca",
        dataset="blobs",
        dataset_kwargs={"grid": 8},
        model_kwargs={"n_samples": 64},
        metrics=["higgins"],
        settings={f"higgins.{key}": value for key, value in FAST_HIGGINS.items()},
        results_dir=str(results),
    )
    return RunConfig(**{**base, **kwargs})


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]


# -- the first list of issue 26, one test each -------------------------------------------------
def test_a_default_typed_out_is_the_same_run_and_one_seed(tmp_path, capsys):
    results = str(tmp_path / "r")
    code, out, err = cli(capsys, *PCA, "--results-dir", results)
    assert code == 0, err
    code, out, err = cli(capsys, *PCA, "--set=n_components=10", "--results-dir", results)
    assert code == 0 and "already exists" in err, err
    assert len(records(tmp_path / "r")) == 1
    board = leaderboard(results)
    assert list(board["n"]) == [1] and list(board["seeds"]) == ["0"]


def test_a_record_copied_under_another_name_is_counted_once(tmp_path):
    results = tmp_path / "r"
    first = run_one(pca_config(results))
    run_one(pca_config(results, seed=1))
    copy = json.loads(Path(first["path"]).read_text())
    copy["run_id"] = "blobs-pca-copy-s0"
    (results / "runs" / "blobs-pca-copy-s0.json").write_text(json.dumps(copy))
    with pytest.warns(UserWarning, match="are the same run") as caught:
        board = leaderboard(results)
    assert list(board["n"]) == [2] and list(board["seeds"]) == ["0,1"]
    message = str(caught[0].message)
    assert "blobs-pca-copy-s0" in message and first["run_id"] in message and "kept" in message


def _arrays_file(path: Path, shift: int) -> None:
    rng = np.random.default_rng(shift)
    factors = np.column_stack([np.arange(400) % 8, (np.arange(400) // 8) % 5])
    images = np.zeros((400, 1, 8, 8), dtype=np.float32)
    for i, (a, b) in enumerate(factors):
        images[i, 0, a, :] = 1.0
        images[i, 0, :, (b + shift) % 8] = 0.5
    images = np.clip(images + rng.uniform(0, 0.05, images.shape), 0, 1).astype(np.float32)
    np.savez(path, images=images, factors=factors)


def test_a_replaced_data_file_is_a_different_run(tmp_path, capsys):
    """Same command, same file name, different content: a new run id and new scores."""
    data = tmp_path / "data.npz"
    results = str(tmp_path / "r")
    args = ["run", "--model=pca", "--dataset=arrays", f"--set=dataset.path={data}",
            "--set=n_samples=64", "--metrics=mig", "--no-progress",
            "--results-dir", results]  # fmt: skip
    _arrays_file(data, 0)
    code, out_a, err = cli(capsys, *args)
    assert code == 0, err
    _arrays_file(data, 3)
    code, out_b, err = cli(capsys, *args)
    assert code == 0 and "already exists" not in err, err
    saved = records(tmp_path / "r")
    assert len(saved) == 2
    assert saved[0]["identity"]["checksum"] != saved[1]["identity"]["checksum"]


ENCODERS = '''
import torch

class Scaled:
    def __init__(self, k):
        self.k = k
    def encode(self, x):
        return x.flatten(1)[:, :4] * self.k

def make_a():
    return Scaled(1.0)

def make_b():
    return Scaled(3.0)
'''


def test_two_encoders_of_one_class_are_two_runs_and_overwrite_keeps_the_old(
    tmp_path, capsys, monkeypatch
):
    (tmp_path / "encoders.py").write_text(ENCODERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    results = str(tmp_path / "r")
    common = ["--dataset=blobs", "--set=dataset.grid=8", "--metrics=mig", "--name=scaled",
              "--no-progress", "--results-dir", results]  # fmt: skip
    for target in ("encoders:make_a", "encoders:make_b"):
        code, _, err = cli(capsys, "evaluate", "--encoder", target, *common)
        assert code == 0 and "already exists" not in err, err
    saved = records(tmp_path / "r")
    assert len(saved) == 2 and saved[0]["run_id"] != saved[1]["run_id"]
    code, _, err = cli(capsys, "evaluate", "--encoder", "encoders:make_a", *common, "--overwrite")
    assert code == 0, err
    kept = list((tmp_path / "r" / "runs" / "replaced").glob("*.json"))
    assert len(kept) == 1 and len(records(tmp_path / "r")) == 2


def test_more_metrics_on_a_seed_never_split_a_row_nor_train_twice(tmp_path, monkeypatch):
    results = tmp_path / "r"
    run_one(pca_config(results, seed=0))
    run_one(pca_config(results, seed=1, metrics=["higgins", "mig"]))
    board = leaderboard(results)
    assert list(board["n"]) == [2]
    assert list(board["higgins.eval_accuracy.n"]) == [2] and list(board["mig.mig.n"]) == [1]
    assert max(len(line) for line in render(board).splitlines()) <= 160

    from dbench.models.baselines import PCAModel

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(PCAModel, "fit", no_training)
    record = run_one(pca_config(results, seed=0, metrics=["higgins", "mig"]))
    assert record["existing"] and set(record["scores"]) == {"higgins", "mig"}
    assert list(leaderboard(results)["mig.mig.n"]) == [2]


def test_two_protocols_on_two_seeds_make_one_narrow_row(tmp_path):
    """pca seed 0 scored with higgins.num_train=200, seed 1 with the default suite."""
    results = tmp_path / "r"
    fast = {f"higgins.{key}": value for key, value in FAST_HIGGINS.items()}
    run_one(pca_config(results, seed=0, settings={**fast, "higgins.num_train": 200}))
    run_one(pca_config(results, seed=1, metrics=None, settings={}))  # the default suite
    board = leaderboard(results)
    assert len(board) == 1 and list(board["n"]) == [2]
    text = render(board)
    assert "higgins#2" in text and max(len(line) for line in text.splitlines()) <= 160


def test_a_live_lock_refuses_a_second_identical_run_and_a_stale_one_is_taken(tmp_path, capsys):
    results = tmp_path / "r"
    run = resolve_run(pca_config(results))
    lock = lock_path(results, run.run_id)
    lock.parent.mkdir(parents=True)
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = socket.gethostname()
        lock.write_text(json.dumps({"host": host, "pid": owner.pid, "started": 0}))
        code, _, err = cli(capsys, *PCA, "--results-dir", str(results))
        one_line_error(code, err, "is being trained by another process")
        assert not (results / "runs").exists()
    finally:
        owner.kill()
        owner.wait()
    code, _, err = cli(capsys, *PCA, "--results-dir", str(results))  # its owner is gone
    assert code == 0, err
    assert len(records(results)) == 1 and not lock.exists()


def test_two_identical_processes_started_together_leave_one_record_untouched(tmp_path):
    results = tmp_path / "r"
    env = {**os.environ, "DBENCH_RESULTS": str(results)}
    args = [sys.executable, "-m", "dbench", *PCA]
    procs = [subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert all(code in (0, 2) for code, _ in outcomes), outcomes
    assert not (results / "runs" / "replaced").exists()
    assert len(records(results)) == 1


# -- the property: spellings never change an identity, resolved values always do ---------------
def _numbers_spelled_as_floats(params: dict) -> dict:
    return {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in params.items()}  # fmt: skip


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 0.5
    return None


@pytest.mark.parametrize("name", MODELS.names())
def test_model_spellings_never_change_an_identity_and_values_always_do(name):
    model = MODELS.create(name)
    if not isinstance(model, HasParams):
        pytest.skip(f"{name} has no get_params")
    defaults = model.get_params()

    def ident(kwargs, **over):
        built = MODELS.create(name, **kwargs)
        base = dict(dataset="blobs", dataset_kwargs={}, dataset_info={"source": "procedural",
                    "checksum": "c"}, model=name, params=params_of(built, name, kwargs), seed=0,
                    budget={"steps": 10, "batch_size": 8}, precision="float32")  # fmt: skip
        return make_identity(**{**base, **over})

    plain = ident({})
    typed_out = dict(reversed(list(defaults.items())))  # every default typed, in reverse order
    assert ident(typed_out).run_id == plain.run_id
    as_floats = _numbers_spelled_as_floats(defaults)
    try:
        floats = ident(as_floats)
    except Exception:  # noqa: BLE001 - a model may refuse 10.0 where it wants an int
        floats = None
    if floats is not None:
        assert floats.run_id == plain.run_id
    changed_any = False
    for key, value in defaults.items():
        new = _changed(value)
        if new is None:
            continue
        try:
            other = ident({key: new})
        except Exception:  # noqa: BLE001 - not every perturbation is a legal value
            continue
        changed_any = True
        assert other.run_id != plain.run_id, (name, key)
    assert changed_any or not defaults
    for over in ({"seed": 1}, {"precision": "bfloat16"}, {"budget": {"steps": 11, "batch_size": 8}},
                 {"budget": {"steps": 10, "batch_size": 9}},
                 {"dataset_info": {"source": "procedural", "checksum": "d"}}):  # fmt: skip
        assert ident({}, **over).run_id != plain.run_id, over
        assert ident({}, **over).config_key != plain.config_key or "seed" in over


@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_spellings_never_change_an_identity(name):
    import inspect

    params = inspect.signature(DATASETS.get(name)).parameters.values()
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    assert data_kwargs(name, {}) == data_kwargs(name, dict(reversed(list(defaults.items()))))
    assert data_kwargs(name, {}) == data_kwargs(name, _numbers_spelled_as_floats(defaults))
    for key, value in defaults.items():
        new = _changed(value)
        if new is not None and key not in ("device", "data_dir", "table_after"):
            assert data_kwargs(name, {key: new}) != data_kwargs(name, {}), (name, key)


def test_a_run_id_changes_with_the_seed_budget_and_precision_through_resolve(tmp_path):
    base = resolve_run(pca_config(tmp_path))
    beta4 = resolve_run(pca_config(tmp_path, model="betavae", model_kwargs={"beta": 4}))
    beta4_0 = resolve_run(pca_config(tmp_path, model="betavae", model_kwargs={"beta": 4.0}))
    assert beta4.run_id == beta4_0.run_id
    for changed in (
        pca_config(tmp_path, seed=1),
        pca_config(tmp_path, budget=Budget(steps=3)),
        pca_config(tmp_path, model_kwargs={"n_samples": 65}),
        pca_config(tmp_path, dataset_kwargs={"grid": 9}),
    ):
        assert resolve_run(changed).run_id != base.run_id
    # the metric list is not part of what ran
    assert resolve_run(pca_config(tmp_path, metrics=["mig"], settings={})).run_id == (
        base.run_id
    )


# -- records: committed studies, migration, portability, schema ---------------------------------
@pytest.mark.parametrize("study", ["table1", "budget", "dcign_plateau"])
def test_committed_studies_rebuild_the_same_rows_and_numbers(study):
    """The leaderboards printed before resolved identities (tests/data/leaderboards)."""
    before = pd.read_csv(REPO / "tests" / "data" / "leaderboards" / f"{study}.csv")
    board = leaderboard(REPO / "results" / "studies" / study)
    now = board[list(before.columns)].reset_index(drop=True)
    before = before.astype({c: now[c].dtype for c in ("seeds",)})
    for col in before.columns:
        if pd.api.types.is_numeric_dtype(before[col]):
            assert np.allclose(now[col].astype(float), before[col].astype(float), equal_nan=True,
                               rtol=1e-9), col  # fmt: skip
        else:
            assert list(now[col].fillna("")) == list(before[col].fillna("")), col


def test_committed_records_are_current_and_portable():
    for path in (REPO / "results" / "studies").glob("*/runs/*.json"):
        record = json.loads(path.read_text(), parse_constant=_no_constants)
        assert record["schema"] == 2 and record["run_id"] == path.stem
        # a run's sampled-representation scores live beside it, under its id + "-sampled"
        sampled = (record.get("representation") or {}).get("kind") == "sampled"
        suffix = "-sampled" if sampled else ""
        assert identity_of_record(record).run_id + suffix == path.stem
        assert not list(_absolute_paths(record)), (path.name, list(_absolute_paths(record)))


def _no_constants(name):
    raise ValueError(f"not strict JSON: {name}")


def _absolute_paths(value, where=""):
    if isinstance(value, str) and (value.startswith("/") or " /" in value):
        yield where
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _absolute_paths(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _absolute_paths(v, f"{where}[{i}]")


def test_new_records_hold_no_absolute_paths_and_are_strict_json(tmp_path):
    record = run_one(pca_config(tmp_path / "r"))
    on_disk = json.loads(Path(record["path"]).read_text(), parse_constant=_no_constants)
    assert not list(_absolute_paths(on_disk))


def test_migration_renames_schema_1_records_once_and_keeps_their_numbers(tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(REPO / "results" / "studies" / "table1", old)
    for path in (old / "runs").glob("*.json"):  # back to how 0.2 wrote them
        record = json.loads(path.read_text())
        legacy = {**record, "schema": 1, "run_id": "legacy-" + path.stem,
                  "identity": record.get("legacy_identity", {})}  # fmt: skip
        legacy.pop("previous_run_ids")
        path.unlink()
        (old / "runs" / f"legacy-{path.stem}.json").write_text(json.dumps(legacy))
    before = leaderboard(old)
    code, out, err = cli(capsys, "migrate", "--results-dir", str(old))
    assert code == 0 and "27 record(s) renamed" in out, err
    assert all(r["schema"] == 2 for r in records(old))
    after = leaderboard(old)
    cols = ["model", "n", "higgins.eval_accuracy.mean", "higgins.eval_accuracy.std"]
    pd.testing.assert_frame_equal(before[cols], after[cols])
    code, out, _ = cli(capsys, "migrate", "--results-dir", str(old))
    assert "0 record(s) renamed" in out and "27 already current" in out


def test_the_published_record_schema_is_current():
    published = json.loads((REPO / "docs" / "record.schema.json").read_text())
    assert published == json.loads(json.dumps(json_schema()))


@pytest.mark.parametrize(
    "change, why",
    [
        ({"config": {"seed": 10**23}}, "config.seed"),
        ({"scores": {"higgins": {"eval_accuracy": True}}}, "scores.higgins.eval_accuracy"),
        ({"identity": {"seed": 5}}, "identity"),
    ],
)
def test_records_with_impossible_values_are_skipped_naming_the_field(tmp_path, change, why):
    results = tmp_path / "r"
    good = run_one(pca_config(results))
    bad = json.loads(Path(good["path"]).read_text())
    for key, value in change.items():
        bad[key] = {**bad[key], **value}
    bad["run_id"] = "bad"
    (results / "runs" / "bad.json").write_text(json.dumps(bad))
    with pytest.warns(UserWarning, match=why):
        board = leaderboard(results)
    assert list(board["n"]) == [1]


def test_a_sweep_over_metric_settings_alone_is_refused_before_ray(tmp_path, capsys):
    code, _, err = cli(capsys, "sweep", "--model=pca", "--dataset=blobs", "--set=dataset.grid=8",
                       "--metrics=higgins", "--grid", "higgins.num_eval=40,50",
                       "--results-dir", str(tmp_path / "r"))  # fmt: skip
    one_line_error(code, err, "are one run")
    assert not (tmp_path / "r").exists()


def test_a_runs_folder_linked_outside_the_results_root_is_refused(tmp_path):
    from dbench.engine.store import iter_records

    outside = tmp_path / "elsewhere"
    run_one(pca_config(outside))
    root = tmp_path / "root"
    root.mkdir()
    (root / "runs").symlink_to(outside / "runs")
    records, skipped = iter_records(root)
    assert records == [] and "outside the results root" in skipped[0]


def test_the_cli_says_a_duplicate_run_in_one_line(tmp_path, capsys):
    results = tmp_path / "r"
    first = run_one(pca_config(results))
    copy = json.loads(Path(first["path"]).read_text())
    copy["run_id"] = "blobs-pca-copy-s0"
    (results / "runs" / "blobs-pca-copy-s0.json").write_text(json.dumps(copy))
    code, out, err = cli(capsys, "leaderboard", "--results-dir", str(results))
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: records ") and "same run" in lines[0]


def test_the_committed_builtin_defaults_are_what_every_builtin_model_resolves():
    """Leaderboards label rows with dbench/reporting/builtin_defaults.json (no torch): it must
    equal what building each built-in model resolves (``make defaults`` rewrites it)."""
    from dbench.reporting.identity import BUILTIN_DEFAULTS, resolved_builtin_defaults

    committed = json.loads(BUILTIN_DEFAULTS.read_text())
    assert committed == resolved_builtin_defaults(), "stale: run `make defaults`"


def test_labels_of_builtin_models_load_no_model_module(tmp_path):
    """A leaderboard of built-in models' records imports neither the models nor torch."""
    code = (
        "import sys\n"
        "from dbench.reporting.identity import model_defaults\n"
        "assert model_defaults('betavae')['beta'] == 4\n"
        "assert model_defaults('nonexistent') is None\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
