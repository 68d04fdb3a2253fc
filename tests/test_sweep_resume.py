"""``dbench sweep --resume`` reads no pickle: it rebuilds the sweep from dbench's own plan.

The sweep folder is part of the results folder, which is untrusted input: Tune's ``tuner.pkl``,
its experiment state and the trials' ``params.pkl`` would run code when unpickled. Resume reads
the plan (JSON) that dbench wrote when the sweep started, the run records and the runs'
checkpoints; runs whose record exists are not trained again and the others continue from their
checkpoint.

Each test starts from a real sweep (the toy plugin of ``tests/test_sweep.py``, on one private
Ray for the module) whose last run lost its record, as a run killed before scoring would.
"""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import struct
import sys
from pathlib import Path

import pytest

from dbench.errors import UserError
from tests._cli import cli, one_line_error
from tests.test_sweep import _records, _toy_plans, plugin_dir, ray_local  # noqa: F401


class _Payload:
    """Unpickling this creates ``path``: what a crafted ``tuner.pkl`` would do with a shell."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _plant(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(_Payload(marker)))


def _options(results: Path, name: str, **kw):
    from dbench.sweep.driver import SweepOptions

    return SweepOptions(name=name, storage=str(results / "sweeps"), **kw)


def _interrupted_sweep(
    results: Path, name: str, seeds: list[int], lost: int = 1
) -> tuple[list[dict], list[dict]]:
    """A finished sweep whose last ``lost`` runs have no record (their artifacts stay);
    returns the records kept and those removed, by seed."""
    from dbench.sweep.driver import run_sweep

    summary = run_sweep(_toy_plans(results, seeds=seeds), _options(results, name))
    assert [o.status for o in summary.outcomes] == ["DONE"] * len(seeds)
    records = sorted(_records(results), key=lambda r: r["config"]["seed"])
    kept, removed = records[: len(records) - lost], records[len(records) - lost :]
    for record in removed:
        (results / "runs" / f"{record['run_id']}.json").unlink()
    return kept, removed


def _trial_dirs(results: Path, name: str) -> list[Path]:
    return [p for p in (results / "sweeps" / name).iterdir() if p.is_dir()]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_resume_never_unpickles_the_sweep_folder(capsys, tmp_path):
    """(a) Crafted ``tuner.pkl`` and ``params.pkl`` run nothing; the sweep still completes."""
    results = tmp_path / "results"
    kept, _ = _interrupted_sweep(results, "crafted", seeds=[0, 1])
    markers = [tmp_path / "tuner-ran", *(tmp_path / f"params-ran-{i}" for i in range(2))]
    _plant(results / "sweeps" / "crafted" / "tuner.pkl", markers[0])
    trial_dirs = _trial_dirs(results, "crafted")
    assert len(trial_dirs) == 2
    for trial_dir, marker in zip(trial_dirs, markers[1:], strict=True):
        _plant(trial_dir / "params.pkl", marker)

    code, out, err = cli(capsys, "sweep", "--resume", "crafted", "--results-dir", str(results))
    assert [m.name for m in markers if m.exists()] == []
    assert code == 0, out + err
    assert "2 trials: 2 done" in out
    records = _records(results)
    assert len(records) == 2 and {r["config"]["seed"] for r in records} == {0, 1}
    assert kept[0] in records  # the finished run was not trained or written again


class _Inotify:
    """Every file that any process (Ray's workers and pyarrow's C++ reads included) opened
    for reading in the watched folders (not in their subfolders), through Linux's inotify."""

    ACCESS, CLOSE_NOWRITE, ISDIR = 0x1, 0x10, 0x40000000

    def __init__(self, folders: list[Path]):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        if self.fd < 0:
            pytest.skip("inotify is not available here")
        self.folders = {}
        for folder in folders:
            wd = self.libc.inotify_add_watch(
                self.fd, str(folder).encode(), self.ACCESS | self.CLOSE_NOWRITE
            )
            assert wd >= 0, f"cannot watch {folder}"
            self.folders[wd] = folder

    def read(self) -> set[Path]:
        seen: set[Path] = set()
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            at = 0
            while at < len(data):
                wd, mask, _cookie, size = struct.unpack_from("iIII", data, at)
                name = data[at + 16 : at + 16 + size].rstrip(b"\0").decode()
                if wd in self.folders and name and not mask & self.ISDIR:  # files only
                    seen.add(self.folders[wd] / name)
                at += 16 + size
        os.close(self.fd)
        return seen


_OPENED: list[str] | None = None  # the audit hook records while this is a list


def _audit(event: str, args: tuple) -> None:
    """Python's ``open`` event: (path, mode or None, flags); writes only are left out."""
    if _OPENED is None or event != "open" or not isinstance(args[0], (str, bytes, Path)):
        return
    mode, flags = args[1], args[2]
    if isinstance(mode, str):
        writes_only = any(c in mode for c in "wax") and "+" not in mode
    else:
        writes_only = isinstance(flags, int) and flags & os.O_ACCMODE == os.O_WRONLY
    if not writes_only:
        _OPENED.append(os.fsdecode(args[0]))


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
@pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux's")
def test_resume_opens_no_pickle_under_the_results_root(tmp_path):
    """(b) No process opens a ``*.pkl`` under the results root for reading during a resume:
    inotify sees every process (the driver's pyarrow reads of Tune's state included), and an
    audit hook every Python-level open in the driver."""
    global _OPENED
    from dbench.sweep.driver import run_sweep

    results = tmp_path / "results"
    _interrupted_sweep(results, "watched", seeds=[0, 1])
    pickles = sorted(results.rglob("*.pkl"))
    assert pickles, "Tune wrote no pickle: the test would prove nothing"
    watch = _Inotify(sorted({results, *(p for p in results.rglob("*") if p.is_dir())}))
    if not getattr(_audit, "installed", False):
        sys.addaudithook(_audit)  # hooks cannot be removed: it records only while active
        _audit.installed = True
    _OPENED = []
    try:
        summary = run_sweep(None, _options(results, "watched"), resume=True)
    finally:
        opened, _OPENED = _OPENED, None
        read = watch.read()
    root = results.resolve()
    read_pickles = sorted(str(p) for p in read if p.suffix == ".pkl")
    assert read_pickles == []
    opened_pickles = [
        p for p in opened if p.endswith(".pkl") and Path(p).resolve().is_relative_to(root)
    ]
    assert opened_pickles == []
    # Nor Tune's experiment state (JSON with pickles inside): of the sweep folder, only the plan.
    sweep = results / "sweeps" / "watched"
    assert {p.name for p in read if p.parent == sweep} == {"dbench-sweep.json"}
    assert [o.status for o in summary.outcomes] == ["DONE", "DONE"]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_resume_trains_only_the_missing_runs_from_their_checkpoints(tmp_path):
    """(c) Runs with a record are not trained again; the others continue from their
    checkpoint (one halfway, one never started), and each is trained once."""
    from dbench.sweep.driver import run_sweep

    results = tmp_path / "results"
    kept, removed = _interrupted_sweep(results, "partial", seeds=[0, 1, 2], lost=2)
    assert [r["config"]["seed"] for r in kept] == [0]
    done_ckpt = results / "artifacts" / kept[0]["run_id"] / "ckpt.json"
    before = {p: p.stat().st_mtime_ns for p in [done_ckpt, *(results / "runs").glob("*.json")]}
    halfway, unstarted = (results / "artifacts" / r["run_id"] for r in removed)
    (halfway / "ckpt.json").write_text("2")  # killed after step 2 of 3
    for p in unstarted.iterdir():  # never started
        p.unlink()
    unstarted.rmdir()

    summary = run_sweep(None, _options(results, "partial"), resume=True)
    assert [(o.status, o.earlier) for o in summary.outcomes] == [
        ("DONE", True),
        ("DONE", False),
        ("DONE", False),
    ]
    assert summary.planned == 3
    records = {r["config"]["seed"]: r for r in _records(results)}
    assert sorted(records) == [0, 1, 2]
    assert records[1]["training"]["resumed_from"] == 2
    assert records[2]["training"]["resumed_from"] == 0
    assert {p: p.stat().st_mtime_ns for p in before} == before  # seed 0: not trained again

    # A second resume finds every record: nothing trains, Ray is not even needed.
    again = run_sweep(None, _options(results, "partial"), resume=True)
    assert [(o.status, o.earlier) for o in again.outcomes] == [("DONE", True)] * 3
    assert {r["config"]["seed"]: r for r in _records(results)} == records


def test_a_sweep_folder_without_dbench_plan_is_not_resumed(tmp_path):
    """A Tune folder from another tool (or an older dbench) has only pickles: refused."""
    from dbench.sweep.driver import run_sweep

    folder = tmp_path / "results" / "sweeps" / "foreign"
    folder.mkdir(parents=True)
    marker = tmp_path / "ran"
    _plant(folder / "tuner.pkl", marker)
    (folder / "dbench-sweep.json").write_text(json.dumps({"cpus": 1, "gpus": 0}))
    with pytest.raises(UserError, match="no dbench plan"):
        run_sweep(None, _options(tmp_path / "results", "foreign"), resume=True)
    assert not marker.exists()


def _write_plan(results: Path, name: str, meta: object) -> None:
    folder = results / "sweeps" / name
    folder.mkdir(parents=True)
    text = meta if isinstance(meta, str) else json.dumps(meta)
    (folder / "dbench-sweep.json").write_text(text)


@pytest.mark.usefixtures("plugin_dir")
def test_the_plan_is_json_that_gives_back_the_same_trials(tmp_path):
    from dbench.sweep.plan import plans_from_json, plans_to_json

    plans = _toy_plans(tmp_path / "results", grid={"beta": [1, 2]})
    again = plans_from_json(json.loads(json.dumps(plans_to_json(plans))), "plan")
    assert [p.label for p in again] == [p.label for p in plans]
    assert [p.config for p in again] == [p.config for p in plans]


@pytest.mark.usefixtures("plugin_dir")
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": None}, "no dbench plan"),
        ({"cpus": -1}, "bad resources"),
        ({"max_concurrent": "all"}, "bad resources"),
        ({"trials": []}, "no trials"),
        ({"trials": [{"label": "x"}]}, "trial 0 is not {label, run}"),
        ({"repeat": True}, "trial 1 repeats an earlier trial"),
        ({"run": {"overwrite": "yes"}}, "bad field 'overwrite'"),
        ({"run": {"model_kwargs": [1]}}, "bad field 'model_kwargs'"),
        ({"run": {"metrics": [1]}}, "bad field 'metrics'"),
        ({"run": {"__class__": "os.system"}}, "bad field '__class__'"),
        ({"run": {"budget": {"epochs": 3}}}, "unexpected keyword argument 'epochs'"),
        ({"run": {"model": "nosuch"}}, "unknown model 'nosuch'"),
        ({"run": {"model_kwargs": {"bogus": 1}}}, "has no setting 'bogus'"),
        ("[" * 100_000, "unreadable sweep plan"),
        ("\x80", "unreadable sweep plan"),
    ],
)
def test_a_crafted_plan_is_one_line_and_runs_nothing(capsys, tmp_path, change, message):
    """The plan is untrusted input too: anything but what dbench writes is one line, exit 2."""
    from dbench.sweep.plan import plans_to_json

    results = tmp_path / "results"
    if isinstance(change, str):
        meta = change
    else:
        trial = plans_to_json(_toy_plans(results, seeds=[0]))[0]
        trial["run"].update(change.pop("run", {}))
        trials = [trial, trial] if change.pop("repeat", False) else [trial]
        meta = {"format": 1, "cpus": 1, "gpus": 0, "max_concurrent": None, "trials": trials}
        meta.update(change)
    _write_plan(results, "crafted", meta)
    code, _, err = cli(capsys, "sweep", "--resume", "crafted", "--results-dir", str(results))
    one_line_error(code, err, message)
    assert not (results / "runs").exists()
