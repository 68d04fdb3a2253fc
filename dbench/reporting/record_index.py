"""The record index: what leaderboards and studies read of each record, kept under the results
root (``.index/records.json``) so that a repeated call parses one file instead of every record.

For each file of ``runs/`` the index holds its summary (:func:`dbench.reporting.runs.summarise`:
run id, row, metrics, sampled or not), or the message it was skipped with, under a **validation
key** taken from the file's ``os.lstat`` (and ``os.stat`` for a link): size, ``mtime_ns``,
``ctime_ns``, inode and device. An entry is reused only when the file's key is unchanged;
changed and new files are read again (through :func:`dbench.engine.store.read_record`, so they
are validated exactly as without an index), entries of deleted files are dropped, and the index
is rewritten (atomically) only when something changed. A file name that is not UTF-8 (Linux
allows it; JSON cannot hold it) is never held: that one file is read on every call. Why a stat
key and not a content hash: hashing means reading every file, most of what the index saves; the
stat key costs one system call per file and still sees every change, because ``ctime`` is set by
the kernel on every write, rename or ``utime`` and cannot be set back by a user (an edit that
keeps the size and restores ``mtime`` still changes it). A file whose ``ctime`` is within
:data:`RACY_S` of the moment it was looked at is not kept: a change in the same clock tick could
leave its key unchanged.

The index is untrusted input like the records: an index that is unreadable, malformed, too
large, from another dbench (another version, other source code or plugins: the rows depend on
them) or hostile is ignored and rebuilt, never a crash; a results root that cannot be written
still works (nothing is written). JSON only (parsed by pydantic-core, as records are). The
files it does not hold are read by :mod:`dbench.reporting.record_reading` (in worker processes
when there are many). It also keeps each model's registered defaults (for labels), so that a
repeated leaderboard does not load the models' modules (and torch). Since they come from an
index checked against this very code, they equal what would be resolved; they are remembered
for the process (:func:`dbench.reporting.identity.remember_defaults`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import time
from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic_core import from_json, to_json

from dbench.engine.store import RunRecord, iter_records, read_record, runs_dir
from dbench.reporting import identity
from dbench.reporting.record_reading import read_entries, summarise_entry
from dbench.reporting.runs import PRIVATE, SUMMARY_KEY

FORMAT = 1
INDEX = Path(".index") / "records.json"
#: seconds: a file changed this recently may change again in the same clock tick
RACY_S = 2.0
#: an index larger than this per record (plus a margin) is not read
MAX_BYTES_PER_RECORD = 64_000
_SCALARS = frozenset((str, int, float, bool, type(None)))
_INTS = ("seed", "steps", "batch_size")
#: the package files rows and outputs are derived with: code, the built-in models' defaults
#: (reporting/builtin_defaults.json) and the report's templates
SOURCE_SUFFIXES = frozenset((".py", ".json", ".j2", ".css"))


class IndexedRecord(Mapping):
    """A record as the reporting layer reads it: its summary, and any other field read from
    the record file (validated by :func:`~dbench.engine.store.read_record`) on first use,
    as the HTML report does for the runs it draws."""

    __slots__ = ("_summary", "_path", "_full")

    def __init__(self, summary: dict[str, Any], path: Path):
        self._summary = summary
        self._path = path
        self._full: RunRecord | None = None

    def _record(self) -> RunRecord:
        if self._full is None:
            self._full = read_record(self._path)
        return self._full

    def __getitem__(self, key: str) -> Any:
        if key == SUMMARY_KEY:
            return self._summary
        if key == "run_id":
            return self._summary["run_id"]
        return self._record()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._record())

    def __len__(self) -> int:
        return len(self._record())


# -- loading ---------------------------------------------------------------------------------
def load(root: Path, model_defaults: bool = True) -> tuple[list[RunRecord], list[str]]:
    """Every usable record under ``root`` (as :class:`IndexedRecord`) and one message per
    skipped file, in file order: unreadable files first, then records no row can be built
    of (as :func:`dbench.reporting.aggregate.load_records` has always said them).
    ``model_defaults``: also resolve the models' defaults (a leaderboard's labels need them)."""
    root = Path(root)
    folder = runs_dir(root)
    if folder.is_symlink():  # the store decides about a linked folder; no index for it
        return _without_index(root)
    paths = [folder / name for name in _json_names(folder)]
    context = _context()
    old, known = _read_index(root, context, len(paths))
    entries: dict[str, dict[str, Any]] = {}
    holdable = {p.name for p in paths if _utf8(p.name)}  # what the index can hold
    changed = set(old) != holdable
    now = time.time_ns()
    stale: dict[str, list[int] | None] = {}  # files to read, by name, with their keys
    for path in paths:
        key = _key(path, now)  # taken before the file is read: a later change shows next time
        entry = old.get(path.name)
        if entry is None or key is None or entry["key"] != key:
            stale[path.name] = key  # None: not kept (racy, or the file vanished)
        else:
            entries[path.name] = entry
    fresh = read_entries([folder / name for name in stale])
    for (name, key), entry in zip(stale.items(), fresh, strict=True):
        entry["key"] = key
        entries[name] = entry
    changed |= not holdable.isdisjoint(stale)
    models = sorted({e["summary"]["row"]["model"] for e in entries.values() if "summary" in e})
    defaults = {m: known[m] for m in models if m in known}
    changed |= set(known) != set(defaults)
    if model_defaults:
        for model in models:
            if model not in defaults:
                defaults[model] = identity.defaults_text(model)
                changed = True
    identity.remember_defaults(defaults)
    if changed and paths:
        _write_index(root, context, entries, defaults)
    records, skipped, bad = [], [], []
    for path in paths:
        entry = entries[path.name]
        if "skip" in entry:
            skipped.append(entry["skip"])
        elif "bad" in entry:
            bad.append(entry["bad"])
        else:
            records.append(IndexedRecord(entry["summary"], path))
    return records, skipped + bad


def state(root: Path) -> str | None:
    """A digest of what :func:`load` would read: the code's context and every record file's
    validation key (the same key and racy margin as the index's entries). Equal digests: the
    same files, none changed, added or removed. One ``lstat`` per file and no JSON read, so a
    repeated call can ask it before loading anything (:mod:`dbench.reporting.result_cache`).
    None when it cannot vouch: a linked ``runs/`` folder (no index for it either) or a file
    that changed too recently (or vanished) for its key to be trusted."""
    folder = runs_dir(Path(root))
    if folder.is_symlink():
        return None
    digest = hashlib.sha256(f"{FORMAT} {_context()}".encode())
    now = time.time_ns()
    for name in _json_names(folder):  # the files and order load reads
        key = _key(os.path.join(folder, name), now)
        if key is None:
            return None
        digest.update(os.fsencode(f"{name}\0{key}\n"))  # a name need not be UTF-8
    return digest.hexdigest()


def _json_names(folder: Path) -> list[str]:
    """The names of the ``*.json`` entries of ``folder`` (hidden ones too, as ``Path.glob``
    gives them), sorted, without building a Path per file: a repeated call asks this of
    thousands of files. :func:`load` and :func:`state` both list records with it."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if e.name.endswith(".json"))
    except OSError:  # no runs/ folder (yet)
        return []


def _without_index(root: Path) -> tuple[list[RunRecord], list[str]]:
    records, skipped = iter_records(root)
    usable, bad = [], []
    for record in records:
        entry = summarise_entry(record)
        if "bad" in entry:
            bad.append(entry["bad"])
        else:
            usable.append({**record, SUMMARY_KEY: entry["summary"]})
    return usable, skipped + bad


def _key(path: Path | str, now_ns: int) -> list[int] | None:
    """The file's validation key, or None when it cannot be trusted (or read)."""
    try:
        st = os.lstat(path)
        key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
        if stat.S_ISLNK(st.st_mode):  # the link and the file it names
            st = os.stat(path)
            key += [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    except OSError:
        return None
    if st.st_ctime_ns > now_ns - RACY_S * 1e9:
        return None
    return key


def _context() -> str:
    """What rows are derived with: dbench's version and source, and the registered plugins."""
    from dbench.registry import DATASETS, METRICS, MODELS
    from dbench.version import __version__

    digest = hashlib.sha256(f"{FORMAT} {__version__}".encode())
    package = Path(__file__).resolve().parents[1]
    sources = [p for p in package.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file()]
    for source in sorted(sources):
        digest.update(source.relative_to(package).as_posix().encode())
        digest.update(source.read_bytes())
    for registry in (MODELS, DATASETS, METRICS):
        for name in registry.names():
            entry = registry.entry(name)
            if entry.distribution is not None:
                try:
                    release = version(entry.distribution)
                except PackageNotFoundError:
                    release = "?"
                digest.update(f"{name}={entry.target} {release}".encode())
    return digest.hexdigest()


# -- the file --------------------------------------------------------------------------------
class _Malformed(Exception):
    """The index is not what this module writes: it is ignored."""


def _read_index(root: Path, context: str, files: int) -> tuple[dict, dict[str, str]]:
    """The index's entries by file name and its models' defaults; nothing when it is missing,
    unreadable, from another context or malformed in any way."""
    path = root / INDEX
    try:
        if path.parent.is_symlink() or path.is_symlink() or not path.is_file():
            return {}, {}
        if path.stat().st_size > MAX_BYTES_PER_RECORD * files + 1_000_000:
            return {}, {}
        data = from_json(path.read_bytes())
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return {}, {}
        if data.get("context") != context:
            return {}, {}
        return _decode(data)
    except (OSError, ValueError, RecursionError, _Malformed, TypeError, KeyError, IndexError):
        return {}, {}


def _write_index(root: Path, context: str, entries: dict, defaults: dict[str, str]) -> None:
    from dbench.atomic import write_text

    folder = root / INDEX.parent
    if folder.is_symlink():
        return
    try:  # NaN (a missing number) written as NaN, read back as NaN
        text = to_json(_encode(context, entries, defaults), inf_nan_mode="constants").decode()
        write_text(root / INDEX, text)
    except (OSError, ValueError):  # a read-only results root: no index, same results
        pass


def _encode(context: str, entries: dict, defaults: dict[str, str]) -> dict[str, Any]:
    """Compact JSON: rows as value lists under shared column lists, and the long JSON texts
    of the private columns (and the metrics blocks) stored once each."""
    tables: dict[str, dict[Any, int]] = {"shapes": {}, "texts": {}, "metrics": {}}

    def ref(table: str, value: Any) -> int:
        return tables[table].setdefault(value, len(tables[table]))

    files = {}
    for name, entry in entries.items():
        if entry.get("key") is None or not _utf8(name):
            continue  # not held: read again on every call (a name JSON cannot hold costs that)
        if "summary" not in entry:
            files[name] = {k: entry[k] for k in ("key", "skip", "bad") if k in entry}
            continue
        summary = entry["summary"]
        row = dict(summary["row"])
        for col in PRIVATE:
            row[col] = ref("texts", row[col])
        metrics = tuple((m, tuple(i["scores"]), i["primary"], tuple(i["lower_is_better"]))
                        for m, i in summary["metrics"].items())  # fmt: skip
        files[name] = {
            "key": entry["key"],
            "run_id": summary["run_id"],
            "shape": ref("shapes", tuple(row)),
            "values": list(row.values()),
            "metrics": ref("metrics", metrics),
            "sampled": summary["sampled"],
        }
    out: dict[str, Any] = {"format": FORMAT, "context": context, "defaults": defaults}
    out["shapes"] = [list(cols) for cols in tables["shapes"]]
    out["texts"] = list(tables["texts"])
    out["metrics"] = [
        {m: {"scores": list(s), "primary": p, "lower_is_better": list(low)} for m, s, p, low in key}
        for key in tables["metrics"]
    ]
    out["files"] = files
    return out


def _utf8(name: str) -> bool:
    """Whether a file name can be written to JSON: Linux allows names that are not UTF-8
    (Python holds them with lone surrogates), which would make the whole index unwritable."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _decode(data: dict[str, Any]) -> tuple[dict, dict[str, str]]:
    """Entries and defaults of a parsed index, every value checked (:class:`_Malformed`)."""
    shapes, texts, metas = data["shapes"], data["texts"], data["metrics"]
    defaults, files = data["defaults"], data["files"]
    _expect(all(isinstance(x, list) for x in (shapes, texts, metas)))
    _expect(isinstance(defaults, dict) and isinstance(files, dict))
    _expect(all(isinstance(t, str) for t in texts))
    for text in defaults.values():
        _expect(isinstance(text, str) and isinstance(json.loads(text), (dict, type(None))))
    for cols in shapes:
        _expect(isinstance(cols, list) and all(isinstance(c, str) for c in cols))
        _expect(len(set(cols)) == len(cols) and set(PRIVATE) <= set(cols))
    for meta in metas:
        _check_metrics(meta)
    checked: set[tuple[str, int]] = set()
    entries = {}
    for name, entry in files.items():
        _expect(isinstance(entry, dict))
        key = entry["key"]
        _expect(isinstance(key, list) and len(key) in (5, 10))
        _expect(all(type(k) is int for k in key))
        if "skip" in entry or "bad" in entry:
            message = entry.get("skip", entry.get("bad"))
            _expect(isinstance(message, str) and len(entry) == 2)
            entries[name] = entry
            continue
        entries[name] = {"key": key, "summary": _summary(entry, name, shapes, texts, metas,
                                                          checked)}  # fmt: skip
    return entries, defaults


def _summary(entry, name, shapes, texts, metas, checked) -> dict[str, Any]:
    run_id, values = entry["run_id"], entry["values"]
    _expect(isinstance(run_id, str) and name == f"{run_id}.json")
    _expect(isinstance(values, list) and _SCALARS.issuperset(map(type, values)))
    _expect(type(entry["shape"]) is int and type(entry["metrics"]) is int)
    _expect(0 <= entry["shape"] < len(shapes) and 0 <= entry["metrics"] < len(metas))
    _expect(isinstance(entry["sampled"], bool))
    cols = shapes[entry["shape"]]
    _expect(len(cols) == len(values))
    row = dict(zip(cols, values, strict=True))
    _expect(row.get("run_id") == run_id)
    _expect(isinstance(row.get("dataset"), str) and isinstance(row.get("model"), str))
    for col in _INTS:
        v = row.get(col)
        _expect(v is None or type(v) is int or (type(v) is float and math.isnan(v)))
    for col in PRIVATE:
        i = row[col]
        _expect(type(i) is int and 0 <= i < len(texts))
        if (col, i) not in checked:
            _check_text(col, texts[i])
            checked.add((col, i))
        row[col] = texts[i]
    summary = {"run_id": run_id, "row": row, "metrics": metas[entry["metrics"]]}
    summary["sampled"] = entry["sampled"]
    return summary


def _check_text(col: str, text: str) -> None:
    """The private columns hold canonical JSON (read back with json.loads downstream)."""
    if col in ("_data_text", "_config", "_run") or (col == "_budget" and text == "unknown"):
        return
    value = json.loads(text)
    if col == "_factors":
        _expect(isinstance(value, list))
    elif col == "_protocol":
        _expect(isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()))
    else:
        _expect(isinstance(value, dict))


def _check_metrics(meta: Any) -> None:
    _expect(isinstance(meta, dict))
    for info in meta.values():
        _expect(isinstance(info, dict) and set(info) == {"scores", "primary", "lower_is_better"})
        _expect(info["primary"] is None or isinstance(info["primary"], str))
        for names in (info["scores"], info["lower_is_better"]):
            _expect(isinstance(names, list) and all(isinstance(s, str) for s in names))


def _expect(condition: bool) -> None:
    if not condition:
        raise _Malformed
