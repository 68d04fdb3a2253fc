"""The sweep's own progress lines (Tune's reporter is silenced): one line per trial event.

Imported only by :mod:`dbench.sweep.driver` once Ray is loaded. The callback is pickled into Tune's
snapshot and comes back on ``--resume``, so all of its state is made in :meth:`setup`.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ray.tune import Callback


class ProgressPrinter(Callback):
    """``[ 3/15]  DONE     betavae beta=4 seed=0   higgins.eval_accuracy=0.8120   41.2s``."""

    def setup(self, *args: Any, **kwargs: Any) -> None:
        self._total = kwargs.get("total_num_samples") or 0
        self._started: dict[str, float] = {}
        self._finished = 0
        self._width = 0

    def _line(self, trial: Any, status: str, tail: str = "") -> None:
        point = trial.config.get("trial", {})
        label = point.get("label", trial.trial_id)
        total = self._total or "?"
        self._width = max(self._width, len(label))
        idx = point.get("index", 0) + 1
        text = f"[{idx:>3}/{total}]  {status:<8} {label:<{self._width}}  {tail}".rstrip()
        print(text, file=sys.stdout, flush=True)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._started[trial.trial_id] = time.monotonic()
        self._line(trial, "running")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        m = trial.last_result or {}
        if "run_id" not in m:  # stopped by a scheduler or by Ctrl-C before scoring
            self._line(trial, "stopped")
            return
        score = f"{m['score_name']}={m['score']:.4f}" if "score" in m else ""
        took = f"{m['trial_s']:.1f}s" if "trial_s" in m else ""
        status = "skipped" if m.get("skipped") else "done"
        self._line(
            trial, status, f"{score}   {took}" + ("  (record exists)" if m.get("skipped") else "")
        )

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trial, "ERROR", f"see {trial.path}/error.txt")
