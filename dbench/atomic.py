"""The one atomic file writer: readers see the old file or the whole new one, never a part.

:func:`atomic_path` yields a unique temporary path in the target's folder (unique, so two
processes writing the same file never collide), fsyncs it, renames it over the target when
the block succeeds and fsyncs the folder, so that the rename survives a power cut too; on any
error — a full disk, an interrupt — the temporary file is removed and the previous file is
left intact. Records, reports, checkpoints, model states and dataset caches are all written
through it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: temporary files start with this, so a later run can recognise (and remove) debris
TEMP_PREFIX = ".dbench-tmp-"


def _umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Write to the yielded temporary path; it replaces ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # make the bytes durable before the rename
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())  # mkstemp makes 0600; keep the user's usual mode
        os.replace(tmp, path)
        _fsync_folder(path.parent)  # the rename is an entry in the folder: make it durable
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    """fsync a directory (POSIX). Where a directory cannot be opened or synced (Windows,
    some network file systems) the rename stands as the system keeps it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def remove_debris(folder: str | os.PathLike) -> int:
    """Delete temporary files a killed writer left in ``folder``; returns how many."""
    return _unlink_each(Path(folder).glob(f"{TEMP_PREFIX}*"))


def remove_dead_debris(folder: str | os.PathLike) -> int:
    """Delete the temporary files that killed writers left in ``folder``; returns how many.

    Unlike :func:`remove_debris`, safe while other processes write into ``folder``: a
    ``.dbench-tmp-*`` file is left alone while a process holds a lock on it (HDF5 locks a file
    it writes, so a live cache writer does), and the older ``<name>.tmp-<pid>`` files only go
    when process ``pid`` is not running. With HDF5 file locking turned off
    (``HDF5_USE_FILE_LOCKING=FALSE``) a concurrent writer's file is not recognised as live.
    """
    folder = Path(folder)
    debris = [t for t in folder.glob(f"{TEMP_PREFIX}*") if not _locked(t)]
    debris += [t for t in folder.glob("*.tmp-*") if _writer_gone(t)]
    return _unlink_each(debris)


def _unlink_each(paths: Iterable[Path]) -> int:
    """Delete each path that can be deleted (one gone meanwhile is skipped); how many were."""
    removed = 0
    for path in list(paths):
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def _locked(path: Path) -> bool:
    """True when another open file holds an exclusive ``flock`` on ``path`` (a live writer)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: no way to tell
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own shared lock


def _writer_gone(tmp: Path) -> bool:
    """True unless the ``.tmp-<pid>`` suffix names another running process."""
    pid = tmp.name.rpartition(".tmp-")[2]
    if not pid.isdigit() or int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists but belongs to someone else: alive
        return False
    return False
