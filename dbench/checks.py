"""Value checks as declarations: what a good value is, and one clear line when it is not.

A :class:`Constraint` says which values a setting, seed or name may take (:class:`Interval`,
:class:`Options`, :class:`OfType`, :class:`Pattern`, :class:`AllOf`); ``check(name, value)``
returns the value or raises a one-line :class:`UserError` ("seed must be an integer in
0..4294967295; got -1"). Because the rule is data rather than code, the contract kit
(:mod:`dbench.testing`) reads it back and tries values outside it (:meth:`Constraint.outside`)
on every registered component. The seed (:data:`SEED`) and the run id (:data:`RUN_ID`) are
declared once here; everything that checks one uses these.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from dbench.errors import UserError


class Constraint:
    """The values a setting may take. Subclasses say what is accepted and in which words."""

    #: what a good value is, as in "``name`` must be {words}"
    words: str = "valid"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is refused ("must be ..."), or None when it is accepted."""
        return None if self.accepts(value) else f"must be {self.words}"

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def check(self, name: str, value: Any) -> Any:
        """``value`` when accepted, else a one-line :class:`UserError` naming ``name``."""
        problem = self.problem(value)
        if problem is not None:
            raise UserError(f"{name} {problem}; got {_shown(value)}")
        return value

    def outside(self) -> tuple[Any, ...]:
        """A few values this constraint refuses (the contract kit tries each of them)."""
        return ()


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # one line, whatever was given


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


@dataclass(frozen=True)
class Interval(Constraint):
    """Integers (``kind=int``) or finite numbers (``kind=float``; ints are numbers too) between
    ``low`` and ``high`` (None: unbounded); ``closed`` names the ends that are included:
    ``both``, ``left``, ``right`` or ``neither`` (scikit-learn's ``Interval``, written here)."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"
    #: overrides the generated description ("positive" where a metric's messages say so)
    said: str | None = None

    def accepts(self, value: Any) -> bool:
        if not (_is_int(value) if self.kind is int else _is_real(value)):
            return False
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (value == self.low and not left)):
            return False
        return self.high is None or value < self.high or (value == self.high and right)

    @property
    def words(self) -> str:  # type: ignore[override]
        if self.said:
            return self.said
        noun = "integer" if self.kind is int else "finite number"
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.kind is int and self.high is None and self.low == 1 and left:
            return "a positive integer"
        if self.low is not None and self.high is not None:
            if self.kind is int and self.closed == "both":
                return f"an integer in {_num(self.low)}..{_num(self.high)}"
            brackets = "[" if left else "(", "]" if right else ")"
            return f"a {noun} in {brackets[0]}{_num(self.low)}, {_num(self.high)}{brackets[1]}"
        article = "an" if self.kind is int else "a"
        if self.low is not None:
            return f"{article} {noun} {'>=' if left else '>'} {_num(self.low)}"
        if self.high is not None:
            return f"{article} {noun} {'<=' if right else '<'} {_num(self.high)}"
        return f"{article} {noun}"

    def outside(self) -> tuple[Any, ...]:
        wrong_type = "1" if self.kind is int else "one"
        values: list[Any] = [wrong_type, True]
        if self.kind is int:
            values.append(1.5)
        else:
            values.append(math.nan)
        if self.low is not None:
            values.append(self.low if self.closed in ("right", "neither") else self.low - 1)
        if self.high is not None:
            values.append(self.high if self.closed in ("left", "neither") else self.high + 1)
        return tuple(values)


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of values (scikit-learn's ``StrOptions``, for any values)."""

    choices: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        try:
            return value in self.choices
        except (TypeError, ValueError):  # an array or an odd object compares to no choice
            return False

    @property
    def words(self) -> str:  # type: ignore[override]
        return f"one of {', '.join(map(repr, self.choices))}"

    def outside(self) -> tuple[Any, ...]:
        return ("no-such-choice", 12345)


@dataclass(frozen=True)
class OfType(Constraint):
    """An instance of ``types`` (a bool is not an int here); ``words`` says it for messages."""

    types: tuple[type, ...]
    words: str = "of the right type"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) and bool not in self.types:
            return False
        return isinstance(value, self.types)

    def outside(self) -> tuple[Any, ...]:
        candidates = ("text", 3, 2.5, [1], None)
        return tuple(v for v in candidates if not self.accepts(v))[:2]


@dataclass(frozen=True)
class Pattern(Constraint):
    """A string matching ``regex`` in full and containing none of ``refused``."""

    regex: re.Pattern[str]
    words: str
    refused: tuple[str, ...] = ()

    def accepts(self, value: Any) -> bool:
        return (
            isinstance(value, str)
            and self.regex.fullmatch(value) is not None
            and not any(part in value for part in self.refused)
        )

    def outside(self) -> tuple[Any, ...]:
        return ("", "../x", "a/b", ".hidden", 7)


@dataclass(frozen=True)
class AllOf(Constraint):
    """Every part holds; the first that refuses a value says why (a type before a range)."""

    parts: tuple[Constraint, ...]

    def problem(self, value: Any) -> str | None:
        for part in self.parts:
            problem = part.problem(value)
            if problem is not None:
                return problem
        return None

    def accepts(self, value: Any) -> bool:
        return self.problem(value) is None

    def outside(self) -> tuple[Any, ...]:
        return tuple(v for part in self.parts for v in part.outside() if not self.accepts(v))


# -- the shared declarations ---------------------------------------------------------------------
#: seeds are numpy/torch seeds
SEED_MAX = 2**32 - 1
#: every seed dbench takes: a run's, a sweep's, ``evaluate``'s, a record's
SEED = Interval(int, 0, SEED_MAX)

#: names that become file names (run ids, sweep names): letters, digits, ``_ . = -``; no path
#: separators, no ``..``, never starting with a dot
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=-]{0,199}")
#: run ids and sweep names
RUN_ID = Pattern(SAFE_NAME, "letters, digits, '_', '.', '=', '-' only", refused=("..",))

POSITIVE_INT = Interval(int, 1)
NONNEGATIVE_INT = Interval(int, 0)


def is_safe_name(text: Any) -> bool:
    return RUN_ID.accepts(text)


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


# -- the checks components call (each one a declaration above) -----------------------------------
def check_positive_int(name: str, value: Any) -> int:
    return POSITIVE_INT.check(name, value)


def check_nonnegative_int(name: str, value: Any) -> int:
    return NONNEGATIVE_INT.check(name, value)


def check_seed(value: Any) -> int:
    """A seed: an integer in 0 .. 2**32 - 1 (what numpy and torch accept)."""
    return SEED.check("seed", value)


def check_number(name: str, value: Any, *, low: float = 0.0, strict: bool = False) -> float:
    """A finite number >= ``low`` (> ``low`` when ``strict``)."""
    return Interval(float, low, closed="right" if strict else "both").check(name, value)


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    return Options(tuple(choices)).check(name, value)
