"""What every built-in model shares: scikit-learn style parameters and persistence.

Hyperparameters are the ``__init__`` keyword arguments, stored under their own names; learned
state is every attribute ending in ``_``. :meth:`save` stores exactly that learned state, so a
model is rebuilt from its registry name, its kwargs (both in the run record) and this file.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from dbench.contracts import Budget
from dbench.models.state import load_state, save_state


class BaseModel:
    default_budget = Budget()

    def get_params(self) -> dict[str, Any]:
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        return {n: getattr(self, n) for n in names}

    def learned_state(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def estimator_factories(self) -> dict[str, Any]:
        """Builders of the empty estimators held in learned state (none by default)."""
        return {}

    def save(self, path: Path) -> None:
        save_state(path, self.learned_state())

    def load(self, path: Path) -> BaseModel:
        vars(self).update(load_state(path, self.estimator_factories()))
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
