"""dbench: a benchmark harness for disentangled representation learning.

The public API is imported lazily so that ``import dbench`` (and the CLI's ``--help``)
stays fast: nothing heavy (torch, ray, seaborn) loads until it is used. A resolved name is
stored on the package, so it stays the function or class it names however often it is
called; no public name is also a submodule's name, so importing a submodule never
replaces one (``tests/test_layout.py`` checks both).
"""

from __future__ import annotations

from typing import Any

from dbench.version import __version__

_API = {
    "RunConfig": "dbench.engine.config:RunConfig",
    "Budget": "dbench.contracts:Budget",
    "FitContext": "dbench.contracts:FitContext",
    "Observations": "dbench.contracts:Observations",
    "Representation": "dbench.representation:Representation",
    "UserError": "dbench.errors:UserError",
    "run_one": "dbench.engine.run:run_one",
    "evaluate": "dbench.engine.evaluate:evaluate",
    "udr": "dbench.engine.udr:udr",
    "load_runs": "dbench.reporting.runs:load_runs",
    "leaderboard": "dbench.reporting.aggregate:leaderboard",
    "get_dataset": "dbench.api:get_dataset",
    "get_model": "dbench.api:get_model",
    "get_metric": "dbench.api:get_metric",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'dbench' has no attribute {name!r}")
    import importlib

    module_name, _, attr = _API[name].partition(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
