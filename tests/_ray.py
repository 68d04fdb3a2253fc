"""Ray processes that a test started, found and stopped by PID: never ``ray stop``, which
would stop every Ray on the machine."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def ray_pids(temp_dir: Path) -> list[int]:
    """PIDs of processes whose command line names our private Ray temp dir (ours only)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(temp_dir) in cmd:
            pids.append(int(proc.name))
    return pids


def stop_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_leftovers(temp_dir: Path, wait: float = 15.0) -> list[int]:
    """Give the Ray processes of ``temp_dir`` ``wait`` seconds to exit, then kill the rest by
    PID; returns the PIDs that had to be killed."""
    deadline = time.time() + wait
    while ray_pids(temp_dir) and time.time() < deadline:
        time.sleep(0.5)
    left = ray_pids(temp_dir)
    stop_pids(left)
    return left
