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
import os
import re
from collections.abc import Callable, Mapping
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


# -- more shapes of rule: either of two, optional, custom, lists; and a declaration's check ------
@dataclass(frozen=True)
class AnyOf(Constraint):
    """One of the parts holds ("a positive integer or 'random'"); ``words`` says what that is."""

    parts: tuple[Constraint, ...]
    words: str

    def accepts(self, value: Any) -> bool:
        return any(part.accepts(value) for part in self.parts)

    def outside(self) -> tuple[Any, ...]:
        return tuple(v for part in self.parts for v in part.outside() if not self.accepts(v))


@dataclass(frozen=True)
class Maybe(Constraint):
    """None (a setting left to a default rule, e.g. "anneal over the budget"), or a value
    ``inner`` accepts; a refused value gets ``inner``'s words, as before None was allowed."""

    inner: Constraint

    def problem(self, value: Any) -> str | None:
        return None if value is None else self.inner.problem(value)

    def accepts(self, value: Any) -> bool:
        return self.problem(value) is None

    @property
    def words(self) -> str:  # type: ignore[override]
        return f"None or {self.inner.words}"

    def outside(self) -> tuple[Any, ...]:
        return tuple(v for v in self.inner.outside() if v is not None)


@dataclass(frozen=True)
class Rule(Constraint):
    """A rule the other constraints do not state: ``test(value)`` decides, and a value it
    cannot even test (``int(nan)``) is refused; ``bad`` lists values it refuses, for the kit."""

    test: Callable[[Any], bool]
    words: str
    bad: tuple[Any, ...] = ()

    def accepts(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except (TypeError, ValueError, OverflowError):
            return False

    def outside(self) -> tuple[Any, ...]:
        return self.bad


@dataclass(frozen=True)
class ListOf(Constraint):
    """A list of at least ``min_len`` items, each accepted by ``item`` (None: any item)."""

    item: Constraint | None
    words: str
    min_len: int = 0

    def accepts(self, value: Any) -> bool:
        return (
            isinstance(value, list)
            and len(value) >= self.min_len
            and (self.item is None or all(self.item.accepts(v) for v in value))
        )

    def outside(self) -> tuple[Any, ...]:
        items = [[v] for v in (self.item.outside()[:1] if self.item is not None else ())]
        return tuple(v for v in ("text", 3, [], *items) if not self.accepts(v))


#: numbers most hyperparameters take (weights, rates)
NONNEGATIVE_NUMBER = Interval(float, 0)
POSITIVE_NUMBER = Interval(float, 0, closed="right")
#: a file or folder a dataset reads; None: its usual place under the data root
DATA_PATH = Maybe(OfType((str, os.PathLike), "a path"))


def check_declared(
    constraints: Mapping[str, Constraint], values: Mapping[str, Any], label: str = ""
) -> dict[str, Any]:
    """``values`` checked by name against a component's declared ``constraints`` (a name
    without one passes as given); messages name ``label`` first ("arrays bins must be ...").

    Models and datasets declare ``constraints = {"beta": NONNEGATIVE_NUMBER, ...}`` as a class
    attribute and their constructor calls this, so the contract kit (:mod:`dbench.testing`)
    can read the same declaration back and try values outside it."""
    prefix = f"{label} " if label else ""
    return {
        key: constraints[key].check(prefix + key, value) if key in constraints else value
        for key, value in values.items()
    }
