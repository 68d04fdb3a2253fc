"""Built-in datasets: ground-truth simulators ``x ~ Sim(v, w)`` (one module per dataset).

``dbench.datasets.from_arrays(images, factors, names=...)`` builds a dataset from labelled
arrays (see :mod:`dbench.datasets.arrays`); it is imported on first use.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "from_arrays":
        from dbench.datasets.arrays import from_arrays

        return from_arrays
    raise AttributeError(f"module 'dbench.datasets' has no attribute {name!r}")
