"""``dbench models | datasets | metrics [NAME]``: what is registered, or what one component is.

Listing reads names and origins only; no component module is imported. With a name the
command describes it (:mod:`dbench.cli.describe`): paper, settings with their types, defaults,
allowed values and meanings, capabilities, fast settings and the cost of the defaults.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dbench.cli.options import DataDir


def _name(kind: str) -> object:
    return typer.Argument(
        help=f"Describe this {kind} (default: list every registered {kind}).", show_default=False
    )


def _list(kind: str) -> None:
    from dbench import registry

    reg = getattr(registry, kind)
    width = max((len(n) for n in reg.names()), default=0)
    for name in reg.names():
        typer.echo(f"{name:<{width}}  {reg.entry(name).origin}")


def models(name: Annotated[str | None, _name("model")] = None) -> None:
    """List registered models, or describe one: paper, settings, capabilities, default budget."""
    if name is None:
        return _list("MODELS")
    from dbench.cli.describe import describe_model

    typer.echo("\n".join(describe_model(name)))


def datasets(
    name: Annotated[str | None, _name("dataset")] = None, data_dir: DataDir = None
) -> None:
    """List registered datasets, or describe one: paper, settings, capabilities, size, source
    and cache state."""
    if name is None:
        return _list("DATASETS")
    from dbench.cli.describe import describe_dataset

    typer.echo("\n".join(describe_dataset(name, data_dir)))


def metrics(name: Annotated[str | None, _name("metric")] = None) -> None:
    """List registered metrics, or describe one: paper, settings, fast settings, cost."""
    if name is None:
        return _list("METRICS")
    from dbench.cli.describe import describe_metric

    typer.echo("\n".join(describe_metric(name)))
