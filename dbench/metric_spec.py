"""A metric's declaration, held by the registry: :class:`MetricSpec`.

A metric is a function ``fn(sim, rep, rng, *, setting=default, ...) -> {score: value}``; its
keyword defaults are its paper's protocol. The spec adds what the harness needs to know
about it without running it:

* ``version`` (part of every score's protocol), ``primary`` (the headline score) and
  ``lower_is_better`` (the scores where smaller is better);
* ``cheap``: scored by ``dbench run`` when no ``--metrics`` are given;
* ``fast``: the settings ``fast=true`` fills in (explicit settings still win);
* ``choices``: the allowed values of string settings;
* ``constraints``: a :class:`~dbench.checks.Constraint` per setting where its default says
  too little (a fraction in (0, 1), say); other settings are constrained by their defaults;
* ``requires(sim, settings)``: what the metric needs of the data (a factor name, two factors).

:meth:`MetricSpec.check` validates settings from these declarations and the signature alone,
so a typo or bad value is one line before any training. Calling the spec checks too, then
runs the function with the fast settings applied.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dbench.checks import AllOf, Constraint, Interval, OfType, Options
from dbench.errors import UserError


@dataclass(frozen=True, eq=False)
class MetricSpec:
    fn: Callable[..., dict[str, float]]
    name: str
    version: str = "unversioned"
    primary: str | None = None
    lower_is_better: frozenset[str] = frozenset()
    cheap: bool = False
    fast: Mapping[str, Any] = field(default_factory=dict)
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    requires: Callable[[Any, dict[str, Any]], None] | None = None
    constraints: Mapping[str, Constraint] = field(default_factory=dict)

    # -- what it accepts ----------------------------------------------------------------------
    @property
    def parameters(self) -> dict[str, inspect.Parameter]:
        """The settings (keyword parameters after ``sim, rep, rng``), ``fast`` included."""
        params = list(inspect.signature(self.fn).parameters.values())[3:]
        named = {p.name: p for p in params if p.kind is not p.VAR_KEYWORD}
        named["fast"] = inspect.Parameter("fast", inspect.Parameter.KEYWORD_ONLY, default=False)
        return named

    @property
    def open_ended(self) -> bool:
        """True when the function takes ``**settings`` it does not declare (plugins only)."""
        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(self.fn).parameters.values())

    def defaults(self) -> dict[str, Any]:
        return {n: p.default for n, p in self.parameters.items() if p.default is not p.empty}

    def info(self) -> dict[str, Any]:
        """What a record keeps about the metric (beside its settings)."""
        return {
            "version": self.version,
            "primary": self.primary,
            "lower_is_better": sorted(self.lower_is_better),
        }

    # -- checking -----------------------------------------------------------------------------
    def constraint(self, key: str) -> Constraint | None:
        """What setting ``key`` may be: its declared constraint, else its declared choices,
        else what its default implies (:func:`inferred`); None when nothing is known."""
        if key in self.constraints:
            return self.constraints[key]
        if key in self.choices:
            return Options(tuple(self.choices[key]))
        param = self.parameters.get(key)
        return None if param is None else inferred(param.default)

    def check(self, settings: Mapping[str, Any], sim: Any = None) -> None:
        """Raise a one-line :class:`UserError` for any setting the metric cannot take.

        Checks names, each value against its :meth:`constraint` (declared, or implied by the
        default), and with ``sim`` what the metric requires of the data.
        """
        params = self.parameters
        for key, value in settings.items():
            param = params.get(key)
            if param is None:
                if self.open_ended:
                    continue
                known = ", ".join(params)
                raise UserError(f"{self.name}: unknown setting {key!r} (known: {known})")
            rule = self.constraint(key)
            if rule is not None:
                rule.check(f"{self.name}: {key}", value)
        if sim is not None and self.requires is not None:
            self.requires(sim, dict(settings))

    def resolve(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Settings as the function receives them: ``fast`` expanded, explicit values win."""
        settings = dict(settings)
        if settings.pop("fast", False):
            settings = {**self.fast, **settings}
        return settings

    def resolved(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Every setting's effective value (defaults filled in, ``fast`` expanded): two runs
        with equal resolved settings ran the same protocol however they were typed."""
        defaults = {k: v for k, v in self.defaults().items() if k != "fast"}
        values = {**defaults, **self.resolve(settings)}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    def __call__(self, sim: Any, rep: Any, rng: Any, **settings: Any) -> dict[str, float]:
        self.check(settings, sim)
        return self.fn(sim, rep, rng, **self.resolve(settings))

    def __repr__(self) -> str:
        return f"MetricSpec({self.name!r}, version={self.version!r}, primary={self.primary!r})"


def inferred(default: Any) -> Constraint | None:
    """The constraint a setting's default implies: its type (an int where a float is expected
    is fine, a list where a tuple is), and positivity for counts and rates whose default is
    positive. None where the default says nothing (no default, or None)."""
    if default is inspect.Parameter.empty or default is None:
        return None
    shown = f"(default {default!r})"
    if isinstance(default, bool):
        return OfType((bool,), f"bool {shown}")
    if isinstance(default, int):
        kind = OfType((int,), f"int {shown}")
        return AllOf((kind, Interval(int, 1, said="positive"))) if default > 0 else kind
    if isinstance(default, float):
        kind = OfType((int, float), f"float {shown}")
        return AllOf((kind, Interval(float, 0, closed="right"))) if default > 0 else kind
    if isinstance(default, (tuple, list)):
        return OfType((tuple, list), f"a list {shown}")
    return OfType((type(default),), f"{type(default).__name__} {shown}")


def metric(
    *,
    version: str,
    primary: str,
    lower_is_better: tuple[str, ...] = (),
    cheap: bool = True,
    fast: Mapping[str, Any] | None = None,
    choices: Mapping[str, tuple[Any, ...]] | None = None,
    requires: Callable[[Any, dict[str, Any]], None] | None = None,
    constraints: Mapping[str, Constraint] | None = None,
    name: str | None = None,
) -> Callable[[Callable[..., dict[str, float]]], MetricSpec]:
    """Declare a metric function; the result is its :class:`MetricSpec` (what registries hold)."""

    def declare(fn: Callable[..., dict[str, float]]) -> MetricSpec:
        return MetricSpec(
            fn=fn,
            name=name or fn.__name__,
            version=version,
            primary=primary,
            lower_is_better=frozenset(lower_is_better),
            cheap=cheap,
            fast=dict(fast or {}),
            choices=dict(choices or {}),
            requires=requires,
            constraints=dict(constraints or {}),
        )

    return declare


def as_spec(obj: Any, name: str) -> MetricSpec:
    """A registered object as a spec: declared specs as they are, plain functions wrapped."""
    if isinstance(obj, MetricSpec):
        return obj
    if not callable(obj):
        raise UserError(f"metric {name!r} is not callable (got {type(obj).__name__})")
    return MetricSpec(fn=obj, name=name, primary=getattr(obj, "primary", None))
