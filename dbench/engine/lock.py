"""One process per run: a lock file under the results root while a run trains.

Two identical ``dbench run`` commands started together would otherwise both train and the
second would replace the first's record. The lock is ``locks/<run_id>.lock`` holding the
owner's host, PID and start time, created atomically (written to a temporary file, then
hard-linked into place, which fails if the lock exists), so a reader never sees half a lock.
A lock left by a process that died is *stale*: on the same host its PID no longer runs. A
lock from another host cannot be checked from here; it is reported, never broken.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dbench.atomic import TEMP_PREFIX
from dbench.errors import UserError


def lock_path(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / "locks" / f"{run_id}.lock"


def _owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": int(time.time())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _holder(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def is_stale(holder: dict[str, Any] | None) -> bool:
    """True when the lock's owner is known to be gone (same host, PID not running) or the
    lock is unreadable (it is written whole, so unreadable means damaged, not in progress)."""
    if holder is None:
        return True
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname():
        return False
    return not (isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 and _alive(pid))


def _try_create(path: Path) -> bool:
    tmp = path.parent / f"{TEMP_PREFIX}{path.name}.{os.getpid()}"
    tmp.write_text(json.dumps(_owner()))
    try:
        os.link(tmp, path)  # atomic; fails when the lock exists
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def run_lock(results_dir: Path, run_id: str) -> Iterator[None]:
    """Hold the run's lock for the block; a live holder is one line (exit 2), a stale one
    is replaced."""
    path = lock_path(results_dir, run_id)
    created = [f for f in (path.parent, *path.parent.parents) if not f.exists()]  # deepest first
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        for _ in range(3):
            if _try_create(path):
                break
            holder = _holder(path)
            if not is_stale(holder):
                assert holder is not None
                since = time.strftime("%H:%M:%S", time.localtime(holder.get("started", 0)))
                raise UserError(
                    f"run {run_id} is being trained by another process (pid {holder.get('pid')} "
                    f"on {holder.get('host')}, since {since}); run this again when it ends, or "
                    f"remove {path} if that process is gone"
                )
            path.unlink(missing_ok=True)  # its owner died: take it over
        else:
            raise UserError(f"could not take the lock {path} for run {run_id}")
    except BaseException:
        _remove_if_empty(path.parent, *created)
        raise
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        _remove_if_empty(path.parent, *created)  # a failed run leaves no empty folders


def _remove_if_empty(*folders: Path) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            pass
