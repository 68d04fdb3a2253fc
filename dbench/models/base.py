"""What every built-in model shares: scikit-learn style parameters and persistence.

Hyperparameters are the ``__init__`` keyword arguments, stored under their own names; learned
state is every attribute ending in ``_``. :meth:`save` stores exactly that learned state, so a
model is rebuilt from its registry name, its kwargs (both in the run record) and this file.
"""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path
from typing import Any

from dbench.contracts import Budget
from dbench.errors import UserError


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

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:
            pickle.dump(self.learned_state(), f)

    def load(self, path: Path) -> BaseModel:
        try:
            with open(path, "rb") as f:
                state = pickle.load(f)  # a file this package wrote for this run
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            raise UserError(f"cannot load model state from {path}: {exc}") from None
        vars(self).update(state)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
