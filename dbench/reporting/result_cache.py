"""The result cache: a repeated ``dbench leaderboard`` or ``dbench study`` (same arguments,
unchanged records) prints (and writes) the output stored under the results root
(``.index/results/``) instead of computing it again.

An entry is named by the SHA-256 of the command, its normalised arguments, the record state
(:func:`dbench.reporting.record_index.state`: dbench's source and plugins, and every record
file's ``lstat`` key, so one ``lstat`` per file and no record or index parsed) and the
registered models', datasets' and metrics' names and targets, and the versions of Python
and of the libraries that render the output (:data:`LIBRARIES`). Any changed, added or removed
record, other argument, other source or other plugin gives another name, so an entry is never
invalidated: it is no longer asked for (the folder keeps the newest :data:`KEEP`).

An entry holds what the call printed: stdout, and its stderr lines (warnings about skipped
records), replayed in the same order; for a command that writes files (``dbench study``),
also those files, by their path under the call's output folder, which a replay writes again.
It is untrusted input like the records: one that is not a regular file, too large, not JSON,
not this module's format or keyed otherwise, or that names a file outside its output folder
(any part not a plain name), is ignored (the call
computes its output as without a cache). Entries are written atomically
(:mod:`dbench.atomic`), only when the record state after the computation equals the one
before (a record changed meanwhile could be half in the output), and never where the results
root cannot be written (no cache, same output). A writer of the results root could forge an
entry, as it could forge the records or their index: the cache guards against accidents and
malformed files, not against the owner of the folder.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from dbench.reporting import record_index

FORMAT = 2
FOLDER = Path(".index") / "results"
#: an entry larger than this is neither written nor read
MAX_BYTES = 32_000_000
#: entries kept in the folder; older ones (other arguments, older records) are removed, and
#: old ones beyond :data:`KEEP_BYTES` in all
KEEP = 64
KEEP_BYTES = 256_000_000
#: the libraries that aggregate and render a leaderboard or a study (their versions are in
#: the key)
LIBRARIES = ("pandas", "numpy", "rich", "tabulate", "jinja2", "markupsafe", "scipy",
             "matplotlib", "seaborn")  # fmt: skip
_ENTRY = re.compile(r"[0-9a-f]{64}\.json")
#: one part of a stored file's path: a plain name (no separator, no leading dot)
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
#: a stored file's path: at most this many parts under the output folder
MAX_DEPTH = 3


def key(root: Path, command: str, arguments: dict[str, Any]) -> str | None:
    """The entry name (a hex digest) of this call, or None when it cannot be cached (the
    record state cannot be vouched for, or the arguments are not plain JSON values)."""
    state = record_index.state(root)
    if state is None:
        return None
    try:
        text = json.dumps(
            [FORMAT, command, arguments, state, _registered(), _libraries()], sort_keys=True
        )
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _registered() -> list[list[str]]:
    """Every registered component's name and target: a plugin installed or removed changes
    labels and defaults, and built-ins have no distribution for the index's context to see."""
    from dbench.registry import DATASETS, METRICS, MODELS

    return [[kind, name, registry.entry(name).target]
            for kind, registry in (("model", MODELS), ("dataset", DATASETS), ("metric", METRICS))
            for name in sorted(registry.names())]  # fmt: skip


def _libraries() -> list[str]:
    """Python's and the renderers' versions: an upgrade may format numbers or tables anew."""
    out = [sys.version]
    for name in LIBRARIES:
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} -")
    return out


def _folder(root: Path) -> Path | None:
    """The cache folder, or None when ``.index`` or it is a link (it could point anywhere)."""
    folder = Path(root) / FOLDER
    if folder.parent.is_symlink() or folder.is_symlink():
        return None
    return folder


def replay(root: Path, name: str) -> tuple[str, list[str], dict[str, bytes]] | None:
    """The stored (stdout, stderr lines, files) of entry ``name``; None when there is none or
    it is anything but what :func:`store` writes."""
    folder = _folder(root)
    if folder is None or not _ENTRY.fullmatch(f"{name}.json"):
        return None
    path = folder / f"{name}.json"
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(data, dict) or set(data) != {"format", "key", "stdout", "stderr_lines",
                                                   "files"}:  # fmt: skip
        return None
    stdout, lines = data["stdout"], data["stderr_lines"]
    if data["format"] != FORMAT or data["key"] != name or not isinstance(stdout, str):
        return None
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        return None
    files = _decode_files(data["files"])
    return None if files is None else (stdout, lines, files)


def _decode_files(stored: Any) -> dict[str, bytes] | None:
    if not isinstance(stored, dict):
        return None
    files = {}
    for relpath, content in stored.items():
        if not is_plain_relpath(relpath) or not isinstance(content, dict) or len(content) != 1:
            return None
        (kind, value), = content.items()
        if not isinstance(value, str) or kind not in ("text", "base64"):
            return None
        try:
            files[relpath] = (value.encode() if kind == "text"
                              else base64.b64decode(value, validate=True))  # fmt: skip
        except (binascii.Error, UnicodeEncodeError):  # lone surrogates in a forged text
            return None
    return files


def is_plain_relpath(relpath: Any) -> bool:
    """Whether ``relpath`` is ``a/b/c`` of plain names (at most :data:`MAX_DEPTH`): a path
    that stays under the folder it is joined to."""
    if not isinstance(relpath, str):
        return False
    parts = relpath.split("/")
    return len(parts) <= MAX_DEPTH and all(_PART.fullmatch(p) for p in parts)


def store(root: Path, command: str, arguments: dict[str, Any], name: str, stdout: str,
          lines: list[str], files: dict[str, bytes] | None = None) -> None:  # fmt: skip
    """Keep this call's output as entry ``name`` (the key asked before computing it), if the
    records are still as they were then; a results root that cannot be written keeps nothing.
    ``files``: the files the call wrote, by their path under its output folder."""
    from dbench.atomic import write_text

    folder = _folder(root)
    if folder is None or key(root, command, arguments) != name:
        return  # a record changed while the output was computed: it may mix old and new
    encoded = {}
    for relpath, content in (files or {}).items():
        if not is_plain_relpath(relpath):
            return  # a name a replay would refuse: nothing kept
        try:
            encoded[relpath] = {"text": content.decode()}
        except UnicodeDecodeError:
            encoded[relpath] = {"base64": base64.b64encode(content).decode()}
    text = json.dumps({"format": FORMAT, "key": name, "stdout": stdout, "stderr_lines": lines,
                       "files": encoded})  # fmt: skip
    if len(text.encode()) > MAX_BYTES:
        return
    try:
        write_text(folder / f"{name}.json", text)
        _prune(folder)
    except OSError:  # read-only or full: no cache, same output
        pass


def _prune(folder: Path) -> None:
    """Remove all but the newest :data:`KEEP` entries (only files named as entries)."""
    entries = []
    for path in folder.iterdir():
        if _ENTRY.fullmatch(path.name):
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                entries.append((info.st_mtime_ns, path.name, info.st_size, path))
    kept = 0
    for rank, (_, _, size, path) in enumerate(sorted(entries, reverse=True)):
        kept += size
        if rank >= KEEP or (rank > 0 and kept > KEEP_BYTES):
            path.unlink(missing_ok=True)
