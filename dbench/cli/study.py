"""``dbench study``: the analyses of Locatello et al. 2019 over every run of a results root.

Per dataset: rank correlations between the metrics, score per method and against the
regularisation strength, the variance shares of method, hyperparameter and seed, unsupervised
model selection (regret), downstream correlations and mean vs sampled total correlation,
written as tidy CSV/JSON and figures under ``--output``; a Markdown summary on stdout.
pandas and seaborn load inside the command, so ``dbench --help`` stays fast.
"""

from __future__ import annotations

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
    from dbench.cli.results import _warnings_to_stderr
    from dbench.paths import results_root
    from dbench.reporting.study import run_study, write_study
    from dbench.reporting.study_text import summary_markdown

    root = results_root(results_dir)
    with _warnings_to_stderr():
        studies = run_study(root, dataset)
    folder = output if output is not None else root / "study"
    for one in studies:
        text = summary_markdown([one])
        with _warnings_to_stderr():
            written = write_study(one, folder / one.name, text, figures=figures)
        typer.echo(f"wrote {len(written)} files to {folder / one.name}", err=True)
    typer.echo(summary_markdown(studies), nl=False)
