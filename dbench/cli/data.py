"""``dbench data prepare | info | show``: dataset housekeeping (caches, facts, preview images).

torch, h5py and the dataset modules load inside the commands, so ``dbench --help`` stays fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from dbench.cli.options import DataDir, Progress, output_option
from dbench.errors import UserError


def prepare(
    name: Annotated[str, typer.Argument(help="Registered dataset, e.g. dsprites.")],
    data_dir: DataDir = None,
    progress: Progress = True,
) -> None:
    """Render a procedural dataset once into <data root>/cache/ so later runs start fast."""
    from dbench.contracts import Preparable
    from dbench.engine.resolve import make_dataset
    from dbench.paths import data_root

    dataset = make_dataset(name, {}, data_dir)
    if not isinstance(dataset, Preparable):
        raise UserError(f"dataset {name!r} has nothing to prepare (it has no prepare step)")
    started = time.perf_counter()
    try:
        path = dataset.prepare(progress=progress)
    except OSError as exc:  # an unwritable or non-folder data root
        raise UserError(f"cannot prepare {name!r} under {data_root(data_dir)}: {exc}") from None
    typer.echo(f"{name}: wrote {path} in {time.perf_counter() - started:.1f} s")


def info(
    name: Annotated[str, typer.Argument(help="Registered dataset, e.g. faces3d.")],
    data_dir: DataDir = None,
) -> None:
    """Factors, sizes, source, checksum and cache state of a dataset."""
    from dbench.engine.resolve import make_dataset
    from dbench.reporting.preview import info_lines

    typer.echo("\n".join(info_lines(name, make_dataset(name, {}, data_dir))))


def show(
    name: Annotated[str, typer.Argument(help="Registered dataset, e.g. shapes3d.")],
    output: Annotated[Path, output_option("PNG file to write.")],
    seed: Annotated[int, typer.Option(min=0, help="Seed of the random samples.")] = 0,
    data_dir: DataDir = None,
) -> None:
    """Write a PNG: random samples, then one row per factor traversal."""
    from dbench.engine.resolve import make_dataset
    from dbench.reporting.preview import show as draw

    typer.echo(f"{name}: wrote {draw(make_dataset(name, {}, data_dir), output, seed=seed)}")
