"""The result cache (dbench/reporting/result_cache.py): a repeated ``dbench leaderboard`` prints
its stored output, byte for byte (stderr warnings too), and computes it anew whenever a record,
an argument or the entry itself is not what it was; files it writes are never served. A
repeated ``dbench study`` writes the files its first call stored (and only under its output
folder) and prints the same lines."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import dbench.reporting.aggregate
from dbench.cli import app
from dbench.reporting import record_index, result_cache
from tests.test_leaderboard import record, write


@pytest.fixture(autouse=True)
def no_racy_margin(monkeypatch):
    """Records written a moment ago count as settled (the margin is record_index's own test)."""
    monkeypatch.setattr(record_index, "RACY_S", 0.0)


def _count_calls(monkeypatch, module, name: str) -> list[int]:
    """A list that grows by one each time ``module.name`` is called (it still runs)."""
    seen: list[int] = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        seen.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return seen


@pytest.fixture
def calls(monkeypatch) -> list[int]:
    """How often the leaderboard was aggregated (computed, not replayed)."""
    return _count_calls(monkeypatch, dbench.reporting.aggregate, "aggregate")


@pytest.fixture
def root(tmp_path) -> Path:
    records = [record(f"b{beta}-s{seed}", seed=seed, kwargs={"beta": beta},
                      scores={"higgins": {"eval_accuracy": 0.5 + beta / 10 + seed / 100}})
               for beta in (1, 4) for seed in (0, 1)]  # fmt: skip
    write(tmp_path, *records)
    time.sleep(0.02)  # a later change lands in a later clock tick
    return tmp_path


def board(root: Path, *args: str):
    result = CliRunner().invoke(app, ["leaderboard", "--results-dir", str(root), *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def entries(root: Path) -> list[Path]:
    folder = root / result_cache.FOLDER
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def test_a_repeated_call_prints_the_stored_output(root, calls):
    first = board(root)
    assert len(calls) == 1 and len(entries(root)) == 1
    again = board(root)
    assert len(calls) == 1  # not aggregated again: replayed
    assert again.stdout == first.stdout and again.stderr == first.stderr
    assert "b1" in first.stdout or "beta" in first.stdout.lower()


def test_an_edit_that_keeps_size_and_mtime_gives_fresh_output(root, calls):
    first = board(root, "--format", "csv")
    path = root / "runs" / "b1-s0.json"
    old = path.stat()
    text = path.read_text()
    assert '"eval_accuracy": 0.6' in text
    time.sleep(0.02)
    path.write_text(text.replace('"eval_accuracy": 0.6', '"eval_accuracy": 0.9'))
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))  # mtime set back
    assert path.stat().st_size == old.st_size and path.stat().st_mtime_ns == old.st_mtime_ns
    again = board(root, "--format", "csv")
    assert len(calls) == 2 and again.stdout != first.stdout
    assert board(root, "--format", "csv").stdout == again.stdout and len(calls) == 2


def test_added_and_removed_records_give_fresh_output(root, calls):
    first = board(root, "--format", "csv")
    write(root, record("b4-s2", seed=2, kwargs={"beta": 4},
                       scores={"higgins": {"eval_accuracy": 0.1}}))  # fmt: skip
    added = board(root, "--format", "csv")
    assert len(calls) == 2 and added.stdout != first.stdout
    (root / "runs" / "b4-s2.json").unlink()  # the first call's files again, unchanged:
    assert board(root, "--format", "csv").stdout == first.stdout and len(calls) == 2  # its entry
    write(root, record("b4-s3", seed=3, kwargs={"beta": 4}))
    assert board(root, "--format", "csv").stdout != first.stdout and len(calls) == 3


def test_a_hidden_record_file_is_watched_like_the_others(root, calls):
    """``runs/.x.json`` is read (and skipped with a warning) like any ``*.json``: changing it
    must change the stored output's key as well."""
    hidden = root / "runs" / ".x.json"
    hidden.write_text("{")
    time.sleep(0.02)
    first = board(root)
    assert ".x.json" in first.stderr
    hidden.write_text("[1, 2]")
    again = board(root)
    assert len(calls) == 2 and again.stderr != first.stderr and "not a JSON object" in again.stderr


def test_another_argument_gives_fresh_output(root, calls):
    table = board(root)
    csv = board(root, "--format", "csv")
    assert len(calls) == 2 and csv.stdout != table.stdout
    assert board(root, "--model", "betavae").stdout == table.stdout and len(calls) == 3
    assert len(entries(root)) == 3


#: ``files`` no entry written by the cache holds: outside the output folder, or malformed
FORGED_FILES = [
    [],
    {"../outside.txt": {"text": "x"}},
    {"/tmp/absolute.txt": {"text": "x"}},
    {"a/../../b.txt": {"text": "x"}},
    {".hidden": {"text": "x"}},
    {"a/b/c/d.txt": {"text": "x"}},
    {"a//b.txt": {"text": "x"}},
    {"a.txt": "x"},
    {"a.txt": {"text": 1}},
    {"a.txt": {"text": "x", "base64": "eA=="}},
    {"a.txt": {"base64": "not base64!"}},
    {"a.txt": {"gzip": "x"}},
]


def test_a_corrupt_or_foreign_entry_is_ignored(root, calls):
    first = board(root)
    (path,) = entries(root)
    good = json.loads(path.read_text())
    spoiled = [
        "",
        "{",
        "[" * 100_000,
        "null",
        "\x00\xff",
        json.dumps({**good, "format": 1}),  # the format before entries held files
        json.dumps({**good, "key": "0" * 64}),
        json.dumps({**good, "stdout": 1}),
        json.dumps({**good, "stderr_lines": [1]}),
        json.dumps({**good, "extra": 1}),
        json.dumps({k: v for k, v in good.items() if k != "files"}),
        *(json.dumps({**good, "files": files}) for files in FORGED_FILES),
    ]
    for n, text in enumerate(spoiled, start=2):
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        again = board(root)
        assert again.stdout == first.stdout and again.stderr == first.stderr
        assert len(calls) == n  # computed, not replayed
        assert json.loads(path.read_text()) == good  # and stored again


def test_an_oversized_entry_or_a_linked_one_is_not_read(root, calls, monkeypatch, tmp_path_factory):
    first = board(root)
    monkeypatch.setattr(result_cache, "MAX_BYTES", 10)
    assert board(root).stdout == first.stdout and len(calls) == 2
    monkeypatch.setattr(result_cache, "MAX_BYTES", 32_000_000)
    (path,) = entries(root)
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "entry.json"
    elsewhere.write_text(path.read_text())
    path.unlink()
    path.symlink_to(elsewhere)
    assert board(root).stdout == first.stdout and len(calls) == 3


def test_skipped_record_warnings_are_replayed_identically(root, calls):
    (root / "runs" / "broken.json").write_text("{not json")
    time.sleep(0.02)
    first = board(root)
    assert "warning: skipped 1 unreadable record(s)" in first.stderr
    again = board(root)
    assert len(calls) == 1 and again.stderr == first.stderr and again.stdout == first.stdout


def test_output_and_plots_bypass_the_cache(root, calls, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    board(root, "--output", str(out / "a.txt"))
    board(root, "--output", str(out / "a.txt"))
    assert len(calls) == 2 and not entries(root)
    board(root)
    (out / "b.txt").unlink(missing_ok=True)
    board(root, "--output", str(out / "b.txt"))  # a stored entry exists: still written anew
    assert len(calls) == 4 and (out / "b.txt").read_text() == (out / "a.txt").read_text()


def test_a_read_only_results_root_has_no_cache_and_the_same_output(root, calls, monkeypatch):
    import dbench.atomic

    def refuse(path, text):
        raise PermissionError(30, "Read-only file system", str(path))

    first = board(root)
    (entries(root)[0]).unlink()
    monkeypatch.setattr(dbench.atomic, "write_text", refuse)
    assert board(root).stdout == first.stdout and board(root).stdout == first.stdout
    assert len(calls) == 3 and not entries(root)


def test_a_freshly_changed_record_is_not_cached(root, calls, monkeypatch):
    monkeypatch.setattr(record_index, "RACY_S", 3600.0)  # every file is "just changed"
    first = board(root)
    assert board(root).stdout == first.stdout and len(calls) == 2 and not entries(root)


def test_the_key_changes_with_the_source_the_plugins_and_the_libraries(root, monkeypatch):
    args = {"format": "table"}
    name = result_cache.key(root, "leaderboard", args)
    assert name == result_cache.key(root, "leaderboard", args)
    monkeypatch.setattr(record_index, "_context", lambda: "other source")
    assert result_cache.key(root, "leaderboard", args) != name
    monkeypatch.undo()
    monkeypatch.setattr(record_index, "RACY_S", 0.0)
    monkeypatch.setattr(result_cache, "_registered", lambda: [["model", "x", "y:z"]])
    assert result_cache.key(root, "leaderboard", args) != name
    monkeypatch.undo()
    monkeypatch.setattr(record_index, "RACY_S", 0.0)
    monkeypatch.setattr(result_cache, "_libraries", lambda: ["pandas 0.1"])
    assert result_cache.key(root, "leaderboard", args) != name
    monkeypatch.undo()
    monkeypatch.setattr(record_index, "RACY_S", 0.0)
    assert result_cache.key(root, "leaderboard", args) == name
    assert result_cache.key(root, "leaderboard", {"format": "csv"}) != name


def test_old_entries_are_pruned(root, monkeypatch):
    monkeypatch.setattr(result_cache, "KEEP", 2)
    for fmt in ("table", "csv", "json", "markdown"):
        board(root, "--format", fmt)
    assert len(entries(root)) == 2


def test_output_with_a_python_warning_is_shown_and_not_cached(root, monkeypatch):
    import warnings

    real = dbench.reporting.aggregate.aggregate

    def noisy(*args, **kwargs):
        warnings.warn("a library changes its mind", FutureWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dbench.reporting.aggregate, "aggregate", noisy)
    with pytest.warns(FutureWarning, match="changes its mind"):  # shown as without a cache
        board(root)
    assert not entries(root)


# -- dbench study: an entry with files -------------------------------------------------------
@pytest.fixture
def analyses(monkeypatch) -> list[int]:
    """How often the study was analysed (computed, not replayed)."""
    import dbench.reporting.study

    return _count_calls(monkeypatch, dbench.reporting.study, "run_study")


def study(root: Path, out: Path):
    args = ["study", "--no-figures", "-o", str(out), "--results-dir", str(root)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def test_a_repeated_study_writes_the_stored_files_and_prints_the_same(root, analyses, tmp_path):
    out = tmp_path / "out"
    first = study(root, out)
    tree = _tree(out)
    assert len(analyses) == 1 and "dsprites/summary.md" in tree and len(tree) > 4
    (out / "dsprites" / "summary.md").unlink()  # the user deletes one file, edits another
    (out / "dsprites" / "study.json").write_text("{}")
    again = study(root, out)
    assert len(analyses) == 1, "computed again, not replayed"
    assert (again.stdout, again.stderr) == (first.stdout, first.stderr)
    assert _tree(out) == tree
    other = tmp_path / "elsewhere"  # another output folder is another call
    study(root, other)
    assert len(analyses) == 2 and _tree(other) == tree
    write(root, record("b4-s2", seed=2, kwargs={"beta": 4}))  # a new record: computed anew
    study(root, out)
    assert len(analyses) == 3


def test_a_forged_study_entry_writes_nothing_outside_its_folder(root, analyses, tmp_path):
    out = tmp_path / "deep" / "out"
    study(root, out)
    (path,) = entries(root)
    good = json.loads(path.read_text())
    for files in FORGED_FILES[1:7]:
        path.write_text(json.dumps({**good, "files": files}))
        study(root, out)
    assert len(analyses) == 7  # every forged entry was ignored and the study computed anew
    assert not list(tmp_path.rglob("outside.txt")) and not list(tmp_path.rglob("b.txt"))
    assert not Path("/tmp/absolute.txt").exists()
