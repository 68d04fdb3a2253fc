"""RunConfig: everything that defines a run (settings reach it via dbench.engine.settings)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from dbench.checks import check_seed
from dbench.contracts import Budget
from dbench.errors import UserError

#: the environment variable that sets the default ``--precision`` (a machine's or a CI's choice)
PRECISION_ENV = "DBENCH_PRECISION"


@dataclass
class RunConfig:
    """One run: a model (with kwargs) trained and scored on one dataset with one seed.

    ``metrics=None`` means every registered metric marked cheap. ``metric_kwargs`` maps a metric
    name to its settings. ``data_dir``/``results_dir`` default to ``$DBENCH_DATA`` /
    ``$DBENCH_RESULTS`` or ``./datasets`` / ``./results``.
    """

    model: str
    dataset: str = "dsprites"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] | None = None
    metric_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    budget: Budget = field(default_factory=Budget)
    device: str = "auto"
    # auto | fp32 | bf16 (dbench.models.precision); $DBENCH_PRECISION sets the default
    precision: str = field(default_factory=lambda: os.environ.get(PRECISION_ENV) or "auto")
    data_dir: str | None = None
    results_dir: str | None = None
    resume: bool = False
    overwrite: bool = False
    show_progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.budget, dict):
            self.budget = Budget(**self.budget)
        from dbench.models.precision import check_choice

        check_choice(self.precision)
        check_seed(self.seed)
        for name, low in (("steps", 0), ("batch_size", 1), ("checkpoint_every", 1)):
            value = getattr(self.budget, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(f"budget {name} must be an integer >= {low}; got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
