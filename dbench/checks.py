"""Argument checks shared by models and datasets: a bad value is one clear :class:`UserError`."""

from __future__ import annotations

import math
import re
from typing import Any

from dbench.errors import UserError


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UserError(f"{name} must be a positive integer; got {value!r}")
    return value


def check_nonnegative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{name} must be an integer >= 0; got {value!r}")
    return value


#: names that become file names (run ids, sweep names): letters, digits, ``_ . = -``; no path
#: separators, no ``..``, never starting with a dot
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=-]{0,199}")


def is_safe_name(text: Any) -> bool:
    return isinstance(text, str) and SAFE_NAME.fullmatch(text) is not None and ".." not in text


#: seeds are numpy/torch seeds
SEED_MAX = 2**32 - 1

# -- limits on sizes a user controls, checked before anything is allocated -----------------------
#: the widest representation ``evaluate`` scores (codes per image): pair metrics hold
#: (points x batch x D) differences, so width is memory (dSprites' raw pixels are 4,096)
MAX_CODE_DIMS = 4096
#: the largest code magnitude ``evaluate`` accepts: metrics square and sum codes in float64
MAX_CODE_MAGNITUDE = 1e100
#: the most trials (grid points x seeds) one sweep plans
MAX_SWEEP_TRIALS = 100_000
#: the most observations ``dbench udr`` encodes per run
MAX_UDR_SAMPLES = 1_000_000


def check_seed(value: Any) -> int:
    """A seed: an integer in 0 .. 2**32 - 1 (what numpy and torch accept)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise UserError(f"seed must be an integer in 0..{SEED_MAX}; got {value!r}")
    return value


def check_number(name: str, value: Any, *, low: float = 0.0, strict: bool = False) -> float:
    """A finite number >= ``low`` (> ``low`` when ``strict``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (strict and value == low):
        relation = ">" if strict else ">="
        raise UserError(f"{name} must be a finite number {relation} {low:g}; got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value
