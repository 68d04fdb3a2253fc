"""Command-line options shared by several commands (typer and stdlib only: imported by --help)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ResultsDir = Annotated[
    Path | None,
    typer.Option("--results-dir", help="Results root (default: $DBENCH_RESULTS or ./results)."),
]
DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data root (default: $DBENCH_DATA or ./datasets)."),
]
