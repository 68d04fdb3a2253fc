"""``dbench models | datasets | metrics``: what is registered, built-ins and plugins.

Listing reads names and origins only; no component module is imported.
"""

from __future__ import annotations

import typer


def _list(kind: str) -> None:
    from dbench import registry

    reg = getattr(registry, kind)
    width = max((len(n) for n in reg.names()), default=0)
    for name in reg.names():
        typer.echo(f"{name:<{width}}  {reg.entry(name).origin}")


def models() -> None:
    """List registered models (built-ins and plugins)."""
    _list("MODELS")


def datasets() -> None:
    """List registered datasets (built-ins and plugins)."""
    _list("DATASETS")


def metrics() -> None:
    """List registered metrics (built-ins and plugins)."""
    _list("METRICS")
