"""``dbench check NAME``: run the contract kit (:mod:`dbench.testing`) on a registered component.

Plugin authors test their package with one command; the exit code is 0 when every check
passes and 1 when one fails (an unknown name is a user error: exit 2). A model is also run end
to end through ``run_one``, as ``dbench run`` runs it (:func:`dbench.testing.check_run`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dbench.cli.options import DataDir, settings_option
from dbench.errors import UserError

#: ``--results-dir`` as every command spells it; here the default is a throwaway folder, so
#: checks never add runs to the leaderboard of $DBENCH_RESULTS or ./results.
CheckResultsDir = Annotated[
    Path | None,
    typer.Option(
        "--results-dir",
        help="Results root that keeps the record and model state of a model's end-to-end run "
        "(default: a temporary folder, removed afterwards).",
    ),
]


def check(
    name: Annotated[str, typer.Argument(help="A registered model, dataset or metric.")],
    kind: Annotated[
        str | None, typer.Option(help="model, dataset or metric (default: every kind it is).")
    ] = None,
    settings: Annotated[
        list[str] | None,
        settings_option("key=value: dataset arguments, hyperparameters or settings."),
    ] = None,
    results_dir: CheckResultsDir = None,
    data_dir: DataDir = None,
) -> None:
    """Check a component against the dbench contracts and print pass/fail per check."""
    from dbench.engine.settings import parse_items
    from dbench.testing import KINDS, check_run, format_results, kinds_of, run_checks

    if kind is not None and kind not in KINDS:
        raise UserError(f"--kind must be one of {', '.join(KINDS)}; got {kind!r}")
    kinds = [kind] if kind else kinds_of(name)
    if not kinds:
        from dbench.registry import MODELS

        MODELS.entry(name)  # the did-you-mean error of an unknown name
    kwargs = parse_items(settings or []) or None
    failed = False
    for each in kinds:
        results = run_checks(each, name, kwargs=kwargs, data_dir=data_dir)
        if each == "model":
            results += check_run(name, model_kwargs=kwargs, results_dir=results_dir)
        typer.echo(format_results(results))
        failed |= any(not r.passed and not r.skipped for r in results)
    if failed:
        raise typer.Exit(1)
