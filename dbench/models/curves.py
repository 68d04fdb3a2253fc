"""Training curves: loss, reconstruction, KL (total and per latent) and images/s over steps.

The training loop appends one JSON line per report (every ``report_every`` steps) to
``curve.jsonl`` in the run's artifact folder; the record's ``training.curve_file`` names it
and ``dbench show`` draws it. When the ``tensorboard`` package is installed
(``pip install dbench[tensorboard]``) the same values also go to TensorBoard event files in
``tensorboard/`` beside it. A resumed run first drops the lines past its checkpoint, so the
curve of an interrupted and resumed run equals the uninterrupted one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

CURVE_FILE = "curve.jsonl"


class CurveLog:
    def __init__(self, workdir: Path | None, resume_from: int | None):
        self.path = Path(workdir) / CURVE_FILE if workdir is not None else None
        self._tb = None
        if self.path is None:
            return
        kept = _rows_up_to(self.path, resume_from) if resume_from is not None else []
        self.path.write_text("".join(json.dumps(row) + "\n" for row in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # optional: without tensorboard the JSON lines are the curve
            return
        self._tb = SummaryWriter(log_dir=str(self.path.parent / "tensorboard"))

    def write(self, step: int, values: dict[str, Any]) -> None:
        if self.path is None:
            return
        row = {"step": step, **{k: _plain(v) for k, v in values.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self._tb is not None:
            for key, value in row.items():
                if key == "step":
                    continue
                if isinstance(value, list):
                    for i, v in enumerate(value):
                        self._tb.add_scalar(f"{key}/{i}", v, step)
                else:
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    value = float(value)
    return value if math.isfinite(value) else None


def _rows_up_to(path: Path, step: int) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut by the interruption: everything after it is gone too
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            rows.append(row)
    return rows


def read_curve(path: Path) -> list[dict[str, Any]]:
    """The rows of a curve file (a malformed line ends it)."""
    return _rows_up_to(Path(path), 2**62)
