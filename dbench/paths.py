"""Where data and results live: flag > environment variable > default folder in the cwd."""

from __future__ import annotations

import os
from pathlib import Path


def data_root(override: str | os.PathLike | None = None) -> Path:
    """The data root: ``--data-dir``, else ``$DBENCH_DATA``, else ``./datasets``."""
    return Path(override or os.environ.get("DBENCH_DATA") or "datasets")


def results_root(override: str | os.PathLike | None = None) -> Path:
    """The results root: ``--results-dir``, else ``$DBENCH_RESULTS``, else ``./results``."""
    return Path(override or os.environ.get("DBENCH_RESULTS") or "results")
