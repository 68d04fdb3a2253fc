"""``dbench study``: the analyses of Locatello et al. 2019 over every run of a results root.

Per dataset: rank correlations between the metrics, score per method and against the
regularisation strength, the variance shares of method, hyperparameter and seed, unsupervised
model selection (regret), downstream correlations and mean vs sampled total correlation,
written as tidy CSV/JSON and figures under ``--output``; a Markdown summary on stdout.
pandas and seaborn load inside the command, so ``dbench --help`` stays fast.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from dbench.cli.options import ResultsDir, output_option


def study(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    output: Annotated[
        Path | None, output_option("Write tables and figures into DIR (default: RESULTS/study).")
    ] = None,
    figures: Annotated[
        bool, typer.Option("--figures/--no-figures", help="Also draw the figures (PNG).")
    ] = True,
    results_dir: ResultsDir = None,
) -> None:
    """Study-level analyses (Locatello et al. 2019) per dataset: tables, figures, summary."""
    from dbench.paths import results_root
    from dbench.reporting import result_cache

    root = results_root(results_dir)
    folder = output if output is not None else root / "study"
    # A repeated call (same arguments and output folder, unchanged records) writes the files
    # and prints the lines that the first one stored (dbench/reporting/result_cache.py).
    args = {"dataset": dataset, "figures": figures, "output": str(folder.absolute())}
    name = result_cache.key(root, "study", args)
    stored = result_cache.replay(root, name) if name else None
    if stored is not None:
        stdout, lines, files = stored
        _write_files(folder, files)
        for line in lines:
            typer.echo(line, err=True)
        typer.echo(stdout, nl=False)
        return
    lines: list[str] = []
    stray: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as stray:
            stdout, written = _study(root, dataset, folder, figures, lines)
    finally:  # a library's own warning: shown as Python would (on an error too), not cached
        for item in stray:
            warnings.showwarning(item.message, item.category, item.filename, item.lineno)
    typer.echo(stdout, nl=False)
    if name is not None and not stray:
        try:
            files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in written}
        except (OSError, ValueError):  # moved or unreadable meanwhile: not kept
            return
        result_cache.store(root, "study", args, name, stdout, lines, files)


def _study(root: Path, dataset: str | None, folder: Path, figures: bool,
           lines: list[str]) -> tuple[str, list[Path]]:  # fmt: skip
    """The analyses, written under ``folder``: the summary to print and the files written
    (each line said on stderr is collected into ``lines`` too)."""
    from dbench.cli.results import _stderr, _warnings_to_stderr
    from dbench.reporting.study import run_study, write_study
    from dbench.reporting.study_text import summary_markdown

    with _warnings_to_stderr(lines):
        studies = run_study(root, dataset)
    written: list[Path] = []
    for one in studies:
        text = summary_markdown([one])
        with _warnings_to_stderr(lines):
            files = write_study(one, folder / one.name, text, figures=figures)
        written += files
        _stderr(f"wrote {len(files)} files to {folder / one.name}", lines)
    return summary_markdown(studies), written


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    from dbench.atomic import write_bytes
    from dbench.errors import UserError

    try:
        for relpath, content in files.items():
            path = folder / relpath
            if _holds(path, content):  # as the stored call left it: not written again
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(path, content)
    except OSError as exc:
        raise UserError(f"cannot write the study to {folder}: {exc}") from None


def _holds(path: Path, content: bytes) -> bool:
    """Whether ``path`` is a plain file (not a link) holding exactly ``content``."""
    try:
        return (not path.is_symlink() and path.stat().st_size == len(content)
                and path.read_bytes() == content)  # fmt: skip
    except OSError:
        return False
