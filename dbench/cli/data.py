"""``dbench data ...``: dataset housekeeping (prepare caches, info, preview images).

Imports only typer and the standard library at module level, so ``dbench --help`` stays fast;
torch, h5py and the dataset modules load inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dbench.cli.options import DataDir

app = typer.Typer(help="Prepare, inspect and preview datasets.", no_args_is_help=True)


@app.command()
def prepare(
    name: Annotated[str, typer.Argument(help="Registered dataset, e.g. dsprites.")],
    data_dir: DataDir = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Render a procedural dataset once into <data root>/cache/ so later runs start fast."""
    import time

    from dbench.engine.resolve import make_dataset
    from dbench.errors import UserError

    dataset = make_dataset(name, {}, str(data_dir) if data_dir else None)
    if not callable(getattr(dataset, "prepare", None)):
        raise UserError(f"dataset {name!r} has nothing to prepare (it has no prepare step)")
    started = time.perf_counter()
    path = dataset.prepare(progress=progress)
    typer.echo(f"{name}: wrote {path} in {time.perf_counter() - started:.1f} s")


@app.command()
def info(
    name: Annotated[str, typer.Argument(help="Registered dataset, e.g. faces3d.")],
    data_dir: DataDir = None,
) -> None:
    """Factors, sizes, source, checksum and cache state of a dataset."""
    from dbench.datasets.preview import info_lines
    from dbench.engine.resolve import make_dataset

    dataset = make_dataset(name, {}, str(data_dir) if data_dir else None)
    typer.echo("\n".join(info_lines(name, dataset)))


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Registered dataset, e.g. shapes3d.")],
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.")],
    seed: Annotated[int, typer.Option(min=0, help="Seed of the random samples.")] = 0,
    data_dir: DataDir = None,
) -> None:
    """Write a PNG: random samples, then one row per factor traversal."""
    from dbench.datasets.preview import show as draw
    from dbench.engine.resolve import make_dataset

    dataset = make_dataset(name, {}, str(data_dir) if data_dir else None)
    typer.echo(f"{name}: wrote {draw(dataset, out, seed=seed)}")
