"""Argument checks shared by models and datasets: a bad value is one clear :class:`UserError`."""

from __future__ import annotations

import math
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


#: seeds are numpy/torch seeds
SEED_MAX = 2**32 - 1


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
