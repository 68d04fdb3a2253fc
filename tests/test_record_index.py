"""The record index (dbench/reporting/record_index.py): the same runs with or without it, every
change to a record seen (even one that keeps the size and sets mtime back), deleted and new
records, a corrupt or hostile index ignored, a read-only results root, and skip warnings
alike on a first and a repeated call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from dbench.engine.store import iter_records
from dbench.reporting import identity, record_index, record_reading
from dbench.reporting.aggregate import filtered_runs, leaderboard, load_records
from tests.test_leaderboard import record, write

INDEX = record_index.INDEX


@pytest.fixture(autouse=True)
def no_racy_margin(monkeypatch):
    """Records written a moment ago are kept in the index (the margin is tested on its own)."""
    monkeypatch.setattr(record_index, "RACY_S", 0.0)


def _records() -> list[dict]:
    out = []
    for beta in (1, 4):
        for seed in (0, 1, 2):
            out.append(record(f"b{beta}-s{seed}", seed=seed, kwargs={"beta": beta},
                              scores={"higgins": {"eval_accuracy": 0.5 + beta / 10 + seed / 100},
                                      "mig": {"mig": 0.1 * seed}}))  # fmt: skip
    out.append(record("pca-s0", model="pca", scores={"higgins": {"eval_accuracy": 0.4}}))
    return out


@pytest.fixture
def root(tmp_path) -> Path:
    time.sleep(0.02)  # the next change lands in a later clock tick than these files
    return write(tmp_path, *_records())


def _frame(records) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return filtered_runs(records, None, None, None)[0]


def _without_index(root: Path) -> pd.DataFrame:
    return _frame(iter_records(root)[0])


def _indexed(root: Path) -> pd.DataFrame:
    return _frame(load_records(root)[0])


def _no_reads(monkeypatch):
    def refuse(path):
        raise AssertionError(f"read {path} although the index holds it")

    monkeypatch.setattr(record_reading, "read_record", refuse)


def test_the_index_gives_the_runs_no_index_gives_and_is_reused(root, monkeypatch):
    expected = _without_index(root)
    pd.testing.assert_frame_equal(_indexed(root), expected)  # first call: writes the index
    assert (root / INDEX).is_file()
    before = (root / INDEX).stat().st_mtime_ns
    with monkeypatch.context() as mp:
        _no_reads(mp)
        pd.testing.assert_frame_equal(_indexed(root), expected)  # every row from the index
    assert (root / INDEX).stat().st_mtime_ns == before  # nothing changed: not rewritten


def test_the_leaderboard_is_the_same_with_its_index(root):
    first = leaderboard(root)
    again = leaderboard(root)
    pd.testing.assert_frame_equal(first, again)
    assert list(first["label"]) == list(again["label"])


def test_an_edit_that_keeps_size_and_mtime_is_read_again(root):
    _indexed(root)
    path = root / "runs" / "b1-s0.json"
    old = path.stat()
    text = path.read_text()
    assert '"eval_accuracy": 0.6' in text
    time.sleep(0.02)  # a later clock tick, as any later edit
    path.write_text(text.replace('"eval_accuracy": 0.6', '"eval_accuracy": 0.9'))
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))  # mtime set back
    assert path.stat().st_size == old.st_size and path.stat().st_mtime_ns == old.st_mtime_ns
    runs = _indexed(root)
    assert runs.set_index("run_id").loc["b1-s0", "higgins.eval_accuracy"] == 0.9
    pd.testing.assert_frame_equal(runs, _without_index(root))


def test_deleted_records_disappear_and_new_ones_appear(root):
    _indexed(root)
    (root / "runs" / "b4-s2.json").unlink()
    write(root, record("b4-s3", seed=3, kwargs={"beta": 4}))
    runs = _indexed(root)
    assert "b4-s2" not in set(runs["run_id"]) and "b4-s3" in set(runs["run_id"])
    pd.testing.assert_frame_equal(runs, _without_index(root))
    kept = json.loads((root / INDEX).read_text())["files"]
    assert "b4-s2.json" not in kept and "b4-s3.json" in kept


def test_a_freshly_changed_record_is_not_kept_in_the_index(root, monkeypatch):
    monkeypatch.setattr(record_index, "RACY_S", 3600.0)  # every file is "just changed"
    runs = _indexed(root)
    pd.testing.assert_frame_equal(runs, _without_index(root))
    assert not (root / INDEX).exists() or not json.loads((root / INDEX).read_text())["files"]


def _hostile(index: dict) -> list:
    """Ways to spoil a valid index (each a copy)."""
    name = sorted(index["files"])[0]
    spoiled = []

    def edit(change):
        copy = json.loads(json.dumps(index))
        change(copy, copy["files"][name])
        spoiled.append(json.dumps(copy))

    edit(lambda i, e: e["values"].__setitem__(0, {"a": [1]}))  # not a cell
    edit(lambda i, e: e.__setitem__("shape", 99))  # no such column list
    edit(lambda i, e: e.__setitem__("key", ["1", 2]))  # key of the wrong type
    edit(lambda i, e: e.__setitem__("run_id", "other"))  # not its file's record
    edit(lambda i, e: i["texts"].__setitem__(e["values"][-1], "not json"))  # a broken text
    edit(lambda i, e: i["defaults"].__setitem__("betavae", "[1, 2]"))  # defaults not a mapping
    edit(lambda i, e: i.__setitem__("files", []))
    edit(lambda i, e: i.__setitem__("format", "1"))
    copy = json.loads(json.dumps(index))  # a seed that is text where a number belongs
    entry = copy["files"][name]
    entry["values"][copy["shapes"][entry["shape"]].index("seed")] = "x"
    spoiled.append(json.dumps(copy))
    return spoiled + ["", "{", "[" * 100_000, "null", '{"format": 1}', "\x00\xff"]


def test_a_corrupt_or_hostile_index_is_ignored_and_rebuilt(root):
    expected = _without_index(root)
    _indexed(root)
    valid = json.loads((root / INDEX).read_text())
    for text in _hostile(valid):
        (root / INDEX).write_text(text, encoding="utf-8", errors="surrogateescape")
        pd.testing.assert_frame_equal(_indexed(root), expected)
        assert json.loads((root / INDEX).read_text())["files"].keys() == valid["files"].keys()


def test_an_index_of_other_code_is_ignored(root, monkeypatch):
    _indexed(root)
    index = json.loads((root / INDEX).read_text())
    name = sorted(index["files"])[0]
    index["files"][name]["values"] = [  # well-formed, but not what this code derives
        v + 1 if type(v) is float else v for v in index["files"][name]["values"]
    ]
    index["context"] = "another dbench"
    (root / INDEX).write_text(json.dumps(index))
    pd.testing.assert_frame_equal(_indexed(root), _without_index(root))


def test_an_index_folder_linked_elsewhere_is_neither_read_nor_written(root, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (root / ".index").symlink_to(elsewhere, target_is_directory=True)
    pd.testing.assert_frame_equal(_indexed(root), _without_index(root))
    assert not list(elsewhere.iterdir())


def test_a_read_only_results_root_works_without_an_index(root, monkeypatch):
    import dbench.atomic

    def refuse(path, text):
        raise PermissionError(30, "Read-only file system", str(path))

    monkeypatch.setattr(dbench.atomic, "write_text", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # quiet: no warning about the index
        records, skipped = load_records(root)
    assert not skipped and not (root / INDEX).exists()
    pd.testing.assert_frame_equal(_frame(records), _without_index(root))


def _skip_messages(root: Path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        leaderboard(root)
    return [str(w.message) for w in caught if "unreadable record" in str(w.message)]


def _add_hostile(root: Path) -> None:
    """An unreadable file and a record no row can be built of."""
    (root / "runs" / "broken.json").write_text("{not json")
    odd = record("odd", seed=5)
    odd["budget"] = {"steps": "many", "batch_size": 64}  # a record, but no identity
    (root / "runs" / "odd.json").write_text(json.dumps(odd))


def test_a_hostile_record_gives_its_one_warning_on_every_call(root):
    _add_hostile(root)
    time.sleep(0.02)
    first, again = _skip_messages(root), _skip_messages(root)
    assert len(first) == 1 and first == again
    assert "skipped 2 unreadable record(s)" in first[0] and "broken.json" in first[0]
    assert "run record odd" in first[0]
    files = json.loads((root / INDEX).read_text())["files"]
    assert "skip" in files["broken.json"] and "bad" in files["odd.json"]


def _many_records(root: Path) -> list[Path]:
    _add_hostile(root)
    for seed in range(3, 23):
        write(root, record(f"b16-s{seed}", seed=seed, kwargs={"beta": 16},
                           scores={"higgins": {"eval_accuracy": seed / 100}}))  # fmt: skip
    time.sleep(0.02)
    return sorted((root / "runs").glob("*.json"))


def _signing_reader(monkeypatch, log: Path) -> None:
    """Each file read leaves the reading process's id in ``log`` (forked workers inherit it)."""
    real = record_reading.read_entry

    def read_and_sign(path):
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return real(path)

    monkeypatch.setattr(record_reading, "read_entry", read_and_sign)


def test_worker_processes_read_what_this_process_reads(root, monkeypatch, tmp_path):
    """Many files are read by forked workers (record_reading.read_entries): the same entries,
    skip messages and runs, in the same order, as when this process reads them all."""
    paths = _many_records(root)
    monkeypatch.setattr(record_reading, "usable_cpus", lambda: 2)
    monkeypatch.setattr(record_reading, "may_fork", lambda: True)  # whatever other tests left
    monkeypatch.setattr(record_reading, "PARALLEL_FILES", 10**9)
    here = record_reading.read_entries(paths)
    with monkeypatch.context() as mp:
        _signing_reader(mp, tmp_path / "readers")
        mp.setattr(record_reading, "PARALLEL_FILES", 4)
        in_workers = record_reading.read_entries(paths)
    readers = (tmp_path / "readers").read_text().split()
    assert len(readers) == len(paths) == 29 and str(os.getpid()) not in readers
    assert json.dumps(in_workers) == json.dumps(here)  # as text: NaN != NaN
    assert sum("skip" in e for e in here) == 1 and sum("bad" in e for e in here) == 1
    monkeypatch.setattr(record_reading, "PARALLEL_FILES", 4)
    records, skipped = load_records(root)
    monkeypatch.setattr(record_reading, "PARALLEL_FILES", 10**9)
    (root / INDEX).unlink()
    records_here, skipped_here = load_records(root)
    assert skipped == skipped_here and len(skipped) == 2
    pd.testing.assert_frame_equal(_frame(records), _frame(records_here))


def test_no_workers_are_forked_beside_another_thread(root, monkeypatch, tmp_path):
    import threading

    paths = _many_records(root)
    monkeypatch.setattr(record_reading, "usable_cpus", lambda: 2)
    monkeypatch.setattr(record_reading, "PARALLEL_FILES", 4)
    _signing_reader(monkeypatch, tmp_path / "readers")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not record_reading.may_fork()
        record_reading.read_entries(paths)
    finally:
        stop.set()
        other.join()
    assert set((tmp_path / "readers").read_text().split()) == {str(os.getpid())}


def test_a_record_file_name_that_is_not_utf8_is_skipped_not_a_crash(root, capsys):
    from tests._cli import cli

    with open(os.fsencode(root / "runs") + b"/bad\xff.json", "wb") as fh:  # Linux allows it
        fh.write(b"{}")
    expected = _without_index(root)
    for _ in range(2):  # a first call, then a repeated one (the result cache's state digest)
        code, out, err = cli(capsys, "leaderboard", "--results-dir", str(root))
        assert code == 0 and "Traceback" not in err
        assert "skipped 1 unreadable record" in err and "bad" in err
        assert (root / INDEX).is_file()  # the other records are still indexed
    before = (root / INDEX).stat().st_mtime_ns
    pd.testing.assert_frame_equal(_indexed(root), expected)
    assert (root / INDEX).stat().st_mtime_ns == before  # and it is not rewritten every call


def test_model_defaults_come_from_the_index(root, monkeypatch):
    first = leaderboard(root)
    monkeypatch.setattr(identity, "_REMEMBERED", {})

    def unresolved(model, kwargs):
        raise AssertionError("resolved a model's defaults although the index holds them")

    monkeypatch.setattr(identity, "registered_params", unresolved)
    pd.testing.assert_frame_equal(leaderboard(root), first)


def test_other_fields_are_read_from_the_record_file(root):
    records, _ = load_records(root)
    one = next(r for r in records if r["run_id"] == "pca-s0")
    assert one["config"]["model"] == "pca" and one["budget"]["steps"] == 100
    assert dict(one) == json.loads((root / "runs" / "pca-s0.json").read_text())


_NO_TORCH = """
import sys, warnings
from pathlib import Path
from dbench.reporting.aggregate import aggregate, filtered_runs, load_records
from dbench.reporting.study import run_study
from dbench.reporting.tables import render
root = Path(sys.argv[1])
run_study(root)
assert "torch" not in sys.modules, "a first study loaded torch"
if sys.argv[2] == "board":
    runs, meta = filtered_runs(load_records(root)[0], None, None, None)
    render(aggregate(runs, meta), "table")
    assert "torch" not in sys.modules, "a repeated leaderboard loaded torch"
"""


def _schema2(run_id: str, seed: int, beta: int) -> dict:
    params = {"beta": beta, "latent_dim": 10}
    budget = {"batch_size": 64, "steps": 1000}
    ident = {"budget": budget, "checksum": "c" * 64, "data_kwargs": {}, "dataset": "dsprites",
             "fingerprint": None, "model": "betavae", "origin": "trained", "params": params,
             "precision": "float32", "revision": 1, "seed": seed, "source": "cache"}  # fmt: skip
    scores = {"higgins": {"eval_accuracy": 0.5 + seed / 10}, "mig": {"mig": 0.1 * beta + seed}}
    return {"schema": 2, "run_id": run_id, "identity": ident, "scores": scores,
            "config": {"dataset": "dsprites", "model": "betavae", "seed": seed,
                       "model_kwargs": {"beta": beta}},
            "metrics": {m: {"version": 1, "primary": next(iter(s))} for m, s in scores.items()},
            "dataset": {"source": "cache", "checksum": "c" * 64}, "budget": budget}  # fmt: skip


def test_schema_2_records_need_no_torch_for_a_study_or_a_repeated_leaderboard(tmp_path):
    write(tmp_path, *(_schema2(f"b{b}-s{s}", s, b) for b in (1, 4) for s in range(3)))
    time.sleep(2.5)  # out of the index's racy margin (a fresh process keeps it)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    study = [sys.executable, "-c", _NO_TORCH, str(tmp_path), "study"]
    done = subprocess.run(study, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    leaderboard(tmp_path)  # the models' defaults go into the index
    board = [sys.executable, "-c", _NO_TORCH, str(tmp_path), "board"]
    done = subprocess.run(board, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_rows_carry_the_identitys_own_keys_whatever_the_configuration_cache_holds():
    """A row's configuration and run keys are computed once per configuration (its seeds share
    them); each must equal what the identity itself gives, for every seed, and a beta of 4
    written as 4.0 must give the same keys as 4."""
    from dbench.reporting.runs import run_row

    records = [_schema2(f"b{b}-s{s}", s, b) for b in (1, 4) for s in range(3)]
    as_float = _schema2("b4f-s1", 1, 4)
    as_float["identity"]["params"]["beta"] = 4.0
    for rec in [*records, as_float, records[0]]:
        ident = identity.identity_of_record(rec)
        row = run_row(rec)
        assert (row["_config"], row["_run"]) == (ident.config_key, ident.key)
        assert row["_params"] == identity.key_text(ident.params)
    assert run_row(as_float)["_run"] == run_row(records[4])["_run"]  # beta 4, seed 1


def test_rows_of_one_configuration_share_its_parts_and_keep_each_runs_own_key():
    """run_row computes a configuration's parts once and reuses them for its other seeds
    (cached on the identity block's text): every row's keys must still be what the record's
    own identity says, for reordered keys, 4 vs 4.0 and other seeds; and a seed that the
    identity model refuses is refused on the shared path too (one it coerces, coerced alike)."""
    from dbench.engine.identity import identity_of_record
    from dbench.reporting.runs import run_row

    def schema2(rec: dict) -> dict:
        return {**rec, "schema": 2, "identity": identity_of_record(rec).model_dump()}

    base = [schema2(record(f"b{beta}-s{seed}", seed=seed, kwargs={"beta": beta}))
            for beta in (4, 4.0, 16) for seed in (0, 1, 7)]  # fmt: skip
    reordered = dict(base[1])
    reordered["identity"] = dict(reversed(list(base[1]["identity"].items())))
    keys = set()
    for rec in [*base, reordered]:
        row, ident = run_row(rec), identity_of_record(rec)
        assert (row["_run"], row["_config"], row["seed"]) == (ident.key, ident.config_key,
                                                               ident.seed)  # fmt: skip
        keys.add(row["_run"])
    assert len(keys) == 6  # beta 4 and 4.0 are one configuration; 2 of them x 3 seeds
    for seed in (-1, 2**32, 10**23, True, "1", 1.0):
        rec = dict(base[0])
        rec["identity"] = {**rec["identity"], "seed": seed}
        if seed in (-1, 2**32, 10**23):
            with pytest.raises(ValueError):
                run_row(rec)
        else:  # what the identity model makes of it (the record's validator refuses them)
            assert run_row(rec)["_run"] == identity_of_record(rec).key
