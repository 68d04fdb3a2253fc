"""Options and small helpers shared by the commands (typer and stdlib only: ``--help`` loads it).

Help texts give defaults in parentheses: rich reads square brackets as markup and drops them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dbench.errors import UserError

ResultsDir = Annotated[
    Path | None,
    typer.Option("--results-dir", help="Results root (default: $DBENCH_RESULTS or ./results)."),
]
#: A string, as the engine takes it (records store it): no Path-to-str conversion per command.
DataDir = Annotated[
    str | None,
    typer.Option(
        "--data-dir", metavar="<path>", help="Data root (default: $DBENCH_DATA or ./datasets)."
    ),
]
Precision = Annotated[
    str,
    typer.Option(
        envvar="DBENCH_PRECISION",
        help="Training precision: auto (bf16 where it is measured faster on this CPU, or the "
        "GPU supports it; else fp32), fp32 or bf16.",
    ),
]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
#: ``--metrics a,b`` of the commands that score (read with :func:`metric_list`).
Metrics = Annotated[
    str | None, typer.Option(help="Comma-separated metrics (default: all cheap ones).")
]
Steps = Annotated[int | None, typer.Option(min=0, help="Training steps.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1, ...")]


def settings_option(help: str) -> Any:
    """``--set key=value`` (repeatable): one spelling of settings on every command that takes
    them; ``help`` names the scopes this command accepts."""
    return typer.Option("--set", help=help)


def output_option(help: str) -> Any:
    """``--output``/``-o``: the one spelling of "write to" on every command that writes files.

    The old spelling ``--out`` still parses (see :data:`OUTPUT_ALIASES`) but is not listed.
    """
    return typer.Option("--output", "-o", help=help)


def _old_output_spelling(name: str) -> str:
    return "output" if name == "out" else name


#: Context settings of the commands with :func:`output_option`: ``--out`` reads as ``--output``.
OUTPUT_ALIASES: dict[str, Any] = {"token_normalize_func": _old_output_spelling}


def metric_list(text: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; ``None`` stays ``None`` (the command's default metrics)."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError("--metrics needs at least one metric name")
    return names


def printable(text: str) -> str:
    """``text`` with what no UTF-8 stream can write (the lone surrogates Python gives a file
    name that is not UTF-8) written as ``\\udcff`` escapes: a message naming such a file is
    still one line, not a UnicodeEncodeError."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
