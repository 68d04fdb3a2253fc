"""What every built-in model shares: scikit-learn style parameters and persistence.

Hyperparameters are the ``__init__`` keyword arguments, stored under their own names; learned
state is every attribute ending in ``_``. :meth:`BaseModel.save` stores exactly that learned
state, so a model is rebuilt from its registry name, its kwargs (both in the run record) and
this file. Models whose learned state is torch modules (the VAE family, InfoGAN) save those
modules' weights instead, one way (:class:`TorchModel`); torch is only loaded when they do.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from dbench.checks import Constraint, check_declared
from dbench.contracts import Budget
from dbench.errors import UserError
from dbench.models.state import (
    load_state,
    load_state_dicts,
    load_torch,
    save_state,
    save_torch,
    state_dicts,
)


class BaseModel:
    default_budget = Budget()
    #: each hyperparameter's constraint (:mod:`dbench.checks`), by ``__init__`` keyword: the
    #: constructor checks values with it (:meth:`set_checked`) and the contract kit tries
    #: values outside it, so the rule is written once
    constraints: ClassVar[Mapping[str, Constraint]] = {}

    def set_checked(self, **values: Any) -> None:
        """Store hyperparameters under their own names, each checked against its declared
        constraint first (a bad value is a one-line UserError naming it)."""
        vars(self).update(check_declared(self.constraints, values))

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


class TorchModel(BaseModel):
    """A model whose learned state is torch modules (:meth:`state_modules`).

    Its file holds the modules' weights with the kwargs, ``fit_info_`` and what rebuilding
    the nets needs besides the kwargs (:meth:`rebuild_info`, e.g. the observation shape), in
    the subclass's ``state_format``; it is read with torch's weights-only loader (no code
    runs). :meth:`load` rebuilds untrained nets on the CPU (:meth:`rebuild`), then loads the
    weights into them.
    """

    state_format = ""  # "dbench-<model>/<version>": a file of another model is refused

    def state_modules(self) -> dict[str, Any]:
        """The torch modules whose weights are the learned state, by name."""
        raise NotImplementedError

    def rebuild_info(self) -> dict[str, Any]:
        """What :meth:`rebuild` needs besides the kwargs, saved with the weights."""
        return {}

    def rebuild(self, saved: dict[str, Any], path: Path) -> None:
        """Build this model's untrained nets on the CPU from a saved state's rebuild info."""
        raise NotImplementedError

    def save(self, path: Path) -> None:
        state = {
            "format": self.state_format,
            **self.rebuild_info(),
            "params": self.get_params(),
            "modules": state_dicts(self.state_modules()),
            "fit_info": getattr(self, "fit_info_", {}),
        }
        save_torch(path, state)

    def load(self, path: Path) -> TorchModel:
        """Rebuild the nets from this model's kwargs and the saved rebuild info; load weights."""
        state = load_torch(path, self.state_format, "cannot load model state from")
        self.rebuild(state, path)
        try:
            load_state_dicts(self.state_modules(), state["modules"])
        except (RuntimeError, KeyError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise UserError(
                f"{path} does not match {self!r} (saved with {state['params']}): {first}"
            ) from None
        self.fit_info_ = state["fit_info"]
        return self
