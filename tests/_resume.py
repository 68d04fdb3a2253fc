"""Exact resume as the model tests check it: a fit killed after a checkpoint, then resumed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dbench.models.training import CHECKPOINT


class Crash(Exception):
    """Raised from the report callback: the training process dies there."""


def crash_and_resume(make_model: Callable[[], Any], sim, ctx: Callable[..., Any], workdir: Path):
    """Fit ``make_model()`` (seed 3, ``ctx(workdir=..., report=...)``) until its report at step
    6 raises, after the step-4 checkpoint and before the step-8 one; then fit a fresh model
    with ``resume=True`` and return it, resumed from step 4."""

    def crash_after_six(step, **_):
        if step == 6:
            raise Crash

    with pytest.raises(Crash):
        make_model().fit(
            sim, np.random.default_rng(3), ctx(workdir=workdir, report=crash_after_six)
        )
    assert torch.load(workdir / CHECKPOINT, weights_only=True)["step"] == 4
    resumed = make_model().fit(sim, np.random.default_rng(3), ctx(workdir=workdir, resume=True))
    assert resumed.fit_info_["resumed_from_step"] == 4
    return resumed
