"""``dbench migrate``: rename records from before resolved run identities (schema 1)."""

from __future__ import annotations

from typing import Annotated

import typer

from dbench.cli.options import ResultsDir


def migrate(
    results_dir: ResultsDir = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would change; change nothing.")
    ] = False,
) -> None:
    """Rewrite schema-1 run records under their resolved run identity (nothing is retrained).

    Leaderboards read old records as they are; migrating lets `dbench run` and `dbench sweep`
    find them under the ids they compute now, and drops the machine paths they recorded.
    """
    from dbench.engine.migrate import migrate as run_migration
    from dbench.errors import UserError
    from dbench.paths import results_root

    root = results_root(str(results_dir) if results_dir else None)
    if not (root / "runs").is_dir():
        raise UserError(f"no run records under {root / 'runs'}")
    done = run_migration(root, dry_run=dry_run)
    verb = "would rename" if dry_run else "renamed"
    for old, new in done.renamed.items():
        typer.echo(f"{verb} {old} -> {new}")
    for old in done.duplicates:
        typer.echo(f"{old}: a second record of an existing run, kept under runs/replaced/")
    for message in done.skipped:
        typer.echo(f"skipped: {message}", err=True)
    typer.echo(
        f"{len(done.renamed)} record(s) {verb}, {len(done.duplicates)} duplicate(s), "
        f"{len(done.current)} already current, {len(done.skipped)} unreadable"
    )
