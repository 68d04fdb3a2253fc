"""The ``dbench`` command line: one typer app, and every command registered here, one way.

One module per command group (run, score, evaluate, udr, sweep, check, components for ``models`` /
``datasets`` / ``metrics``, results for ``leaderboard`` / ``show`` / ``report``, data for
``data prepare | info | show``). Their top level imports only typer, the standard library,
:mod:`dbench.cli.options` and :mod:`dbench.errors`, so ``dbench --help`` answers fast; each
command imports its own work when it runs. :func:`main` turns every
:class:`~dbench.errors.UserError` into one line on stderr and exit code 2, and Ctrl-C into one
``interrupted:`` line and exit code 130.
"""

from __future__ import annotations

import inspect
import sys

import typer

from dbench.cli import (
    check,
    components,
    data,
    evaluate,
    migrate,
    results,
    run,
    score,
    study,
    sweep,
    udr,
)
from dbench.cli.options import OUTPUT_ALIASES, printable
from dbench.errors import Interrupted, UserError

app = typer.Typer(
    name="dbench",
    help="Benchmark disentangled representation learning: train, score, compare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
data_app = typer.Typer(help="Prepare, inspect and preview datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

#: (group, name, function) of every command, in the order ``--help`` lists them.
COMMANDS = (
    (app, "run", run.run),
    (app, "score", score.score),
    (app, "evaluate", evaluate.evaluate),
    (app, "udr", udr.udr),
    (app, "sweep", sweep.sweep),
    (app, "models", components.models),
    (app, "datasets", components.datasets),
    (app, "metrics", components.metrics),
    (app, "check", check.check),
    (app, "leaderboard", results.leaderboard),
    (app, "show", results.show),
    (app, "report", results.report),
    (app, "study", study.study),
    (app, "migrate", migrate.migrate),
    (data_app, "prepare", data.prepare),
    (data_app, "info", data.info),
    (data_app, "show", data.show),
)

for group, name, command in COMMANDS:
    # Commands that write files take --output/-o; their old spelling --out still parses.
    writes = "output" in inspect.signature(command).parameters
    group.command(name, context_settings=OUTPUT_ALIASES if writes else None)(command)


def main() -> None:
    """Console entry point: user errors, and typer's usage errors (a bad option value, an
    unknown option), become one line on stderr and exit code 2; Ctrl-C becomes one
    ``interrupted: ...`` line and exit code 130."""
    errors = _click_exceptions()
    aborts = (typer.Abort, getattr(errors, "Abort", typer.Abort))
    try:
        code = app(standalone_mode=False)
    except UserError as exc:
        typer.echo(printable(f"error: {exc}"), err=True)
        sys.exit(2)
    except Interrupted as exc:  # a command that says what it kept
        typer.echo(printable(f"interrupted: {exc}"), err=True)
        sys.exit(130)
    except errors.NoArgsIsHelpError as exc:  # `dbench data`: typer has shown the help
        sys.exit(exc.exit_code)
    except errors.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        message = " ".join(exc.format_message().split())
        typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(2 if isinstance(exc, errors.UsageError) else exc.exit_code)
    except aborts:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    if code == 130:
        # typer turns Ctrl-C outside run and sweep (which raise Interrupted) into a bare
        # exit 130; say what it means.
        typer.echo(
            "interrupted: stopped before finishing; dbench writes records, caches, tables "
            "and figures whole (temp file, then rename), so none was left half-written",
            err=True,
        )
    if isinstance(code, int) and code:  # typer.Exit(code) from a command
        sys.exit(code)


def _click_exceptions():
    """The exception classes typer's parser raises (typer >= 0.20 vendors click)."""
    try:
        from typer._click import exceptions
    except ImportError:  # older typer: click itself
        from click import exceptions
    return exceptions
