"""Progress bars for long steps (rich, on stderr). Disabled ones cost nothing.

:func:`quiet` switches every bar off for a block (``dbench run --no-progress``), including the
bars of components that draw their own (a dataset rendering itself on first use).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_QUIET: ContextVar[bool] = ContextVar("dbench_quiet", default=False)


def interactive() -> bool:
    """True in a terminal or a Jupyter/IPython kernel: where a Python API call shows progress
    unless asked not to (``progress=False``)."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) or "ipykernel" in sys.modules


def status(line: str) -> None:
    """A status line on stderr ("fitting ...", "scoring mig"), off under the same switch as
    the progress bars (:func:`quiet`)."""
    if not _QUIET.get():
        print(line, file=sys.stderr, flush=True)


@contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """No progress bars inside the block when ``enabled``."""
    token = _QUIET.set(enabled or _QUIET.get())
    try:
        yield
    finally:
        _QUIET.reset(token)


class _Bar:
    def __init__(self, progress: Any, task: Any):
        self._progress, self._task = progress, task
        self.started = time.perf_counter()

    def advance(self, n: float = 1, **fields: Any) -> None:
        if self._progress is not None:
            info = "  ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items()
            )
            self._progress.update(self._task, advance=n, info=info)


@contextmanager
def progress_bar(description: str, total: float | None, enabled: bool = True) -> Iterator[_Bar]:
    """A bar with elapsed/remaining time and free-form fields (loss, images/s, ...)."""
    if not enabled or _QUIET.get():
        yield _Bar(None, None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(file=sys.stderr)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total, info="")
        yield _Bar(progress, task)
