"""``dbench.get_dataset / get_model / get_metric``: registry look-ups for users and notebooks."""

from __future__ import annotations

from typing import Any

from dbench.registry import METRICS, MODELS


def get_dataset(name: str, data_dir: str | None = None, **kwargs: Any) -> Any:
    """A simulator by registered name (``data_dir`` defaults to ``$DBENCH_DATA`` or ./datasets)."""
    from dbench.engine.resolve import make_dataset

    return make_dataset(name, kwargs, data_dir)


def get_model(name: str, **kwargs: Any) -> Any:
    """An unfitted model by registered name, with keyword hyperparameters."""
    return MODELS.create(name, **kwargs)


def get_metric(name: str) -> Any:
    """A metric function ``fn(sim, rep, rng, **settings)`` by registered name."""
    return METRICS.get(name)
