"""Reading record files into the summaries leaderboards and studies use: each file validated by
:func:`dbench.engine.store.read_record` and summarised by :func:`dbench.reporting.runs.summarise`,
or turned into the one message it is skipped with. Many files (a study's first call: 12,600
records) are read by forked worker processes, since that work is per file and pure Python; the
record index (:mod:`dbench.reporting.record_index`) asks for the files it does not hold.

Why processes and ``fork``: the work holds the GIL, so threads would not run it in parallel;
a forked worker starts in milliseconds with every module already imported, where a spawned one
would import dbench, pydantic and pandas again. Where ``fork`` is not safe the files are read in
this process (see :func:`may_fork`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from dbench.engine.store import RunRecord, read_record
from dbench.errors import UserError
from dbench.reporting.runs import summarise

#: at least this many files to read before worker processes read them: below it the fork and
#: sending the summaries back (about a sixth of what reading a file costs on this project's
#: CPU; benchmarks/study_scale.py) do not pay
PARALLEL_FILES = 2_000
#: at most this many worker processes read records
MAX_WORKERS = 8


def read_entries(paths: list[Path]) -> list[dict[str, Any]]:
    """One entry per file of ``paths``, in order (:func:`read_entry`): in forked workers, one
    contiguous share each (so a configuration's seeds stay together and its row parts are
    computed once per worker), when there are many files, two or more usable CPUs and
    :func:`may_fork`; here otherwise."""
    workers = min(usable_cpus(), MAX_WORKERS, len(paths) // (PARALLEL_FILES // 2))
    if workers < 2 or not may_fork():
        return _read_share(paths)
    import multiprocessing
    import warnings
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    size = -(-len(paths) // (4 * workers))  # four shares a worker: a slow one holds up less
    shares = [paths[i : i + size] for i in range(0, len(paths), size)]
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns on any fork of a process with threads; the only ones left
            # here (may_fork) are the idle pools of numeric libraries, which the child does
            # not use.
            warnings.filterwarnings(
                "ignore", message=".*multi-threaded.*fork", category=DeprecationWarning
            )
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                return [entry for share in pool.map(_read_share, shares) for entry in share]
    except (OSError, BrokenProcessPool):  # no process to be had (limits, memory): read here
        return _read_share(paths)


def may_fork() -> bool:
    """Whether worker processes may be forked from this one: on Linux (the only platform
    trusted with ``fork``; macOS system libraries are not fork-safe, Windows has none) and with
    no other Python thread running (a notebook's or a server's could hold a lock the child
    would need)."""
    import threading

    return sys.platform == "linux" and threading.active_count() == 1


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may run on
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _read_share(paths: list[Path]) -> list[dict[str, Any]]:
    """The entries of ``paths``, read in this process (a worker's share, or all of them)."""
    return [read_entry(p) for p in paths]


def read_entry(path: Path) -> dict[str, Any]:
    """``{"summary": ...}``, or ``{"skip": message}`` for a file that is no usable record, or
    ``{"bad": message}`` for a record no row can be built of."""
    try:
        record = read_record(path)
    except UserError as exc:
        return {"skip": str(exc)}
    return summarise_entry(record)


def summarise_entry(record: RunRecord) -> dict[str, Any]:
    # Structure is validated when records are read (engine.record); this catches what only
    # building a row reveals (a string where a mapping belongs).
    try:
        return {"summary": summarise(record)}
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        problem = f"malformed record ({type(exc).__name__}: {exc})"
        return {"bad": f"run record {record.get('run_id', '?')}: {problem}"}
