"""The Metric contract, checked on reference representations: :func:`check_metric`.

No model is trained: a metric is scored on the ground-truth representation (the factors
themselves, the "ground truth" row of Higgins et al. 2017, Table 1) and on a noise
representation of the same width that ignores the observation. Neither renders an image,
so the check costs only the metric's own work, at its fast settings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from dbench.testing.results import CheckResult, NotApplicable, Suite, expect

#: how far the ground truth may fall behind noise on the headline score (estimator noise:
#: scores that ignore the factors, like total correlation, rate both codes about equally)
TOLERANCE = 0.02
#: relative tolerance of the determinism check (same seed, same scores)
REL_TOL = 1e-9


def metric_label(metric: Any, name: str | None = None) -> str:
    if name:
        return name
    if isinstance(metric, str):
        return metric
    return getattr(metric, "name", None) or getattr(metric, "__name__", type(metric).__name__)


def as_metric(metric: Any, name: str | None = None) -> Any:
    """The :class:`~dbench.metric_spec.MetricSpec` of a registered name, a spec or a plain
    metric function."""
    from dbench.metric_spec import as_spec

    if isinstance(metric, str):
        from dbench.registry import METRICS

        return METRICS.get(metric)
    return as_spec(metric, metric_label(metric, name))


def truth_representation(sim: Any) -> Any:
    """The factors themselves as the code (float64 grid indices)."""
    from dbench.representation import Representation

    return Representation(sim, lambda obs: np.asarray(obs.factors, dtype=np.float64))


def noise_representation(sim: Any, seed: int) -> Any:
    """Standard normal codes as wide as the factors, drawn afresh for every observation."""
    from dbench.representation import Representation

    rng = np.random.default_rng(seed)
    width = len(sim.factor_sizes)
    return Representation(sim, lambda obs: rng.standard_normal((len(obs), width)), cache=False)


def check_metric(
    metric: Any,
    sim: Any = None,
    *,
    name: str | None = None,
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> list[CheckResult]:
    """Check a metric (a registered name, a :class:`MetricSpec` or a plain function) on ``sim``.

    ``sim`` defaults to :class:`~dbench.testing.toy.TinyShapes`; ``settings`` to
    ``{"fast": True}`` (the metric's declared fast settings). Checks: ``declaration`` (a
    headline ``primary`` score, ``lower_is_better`` names, valid fast settings), ``applicable``
    (what the metric requires of ``sim``; skipped, with the rest, when it does not apply),
    ``refuses_invalid`` (for every setting with a constraint, declared or implied by its default,
    each value outside it is refused with a one-line :class:`UserError`, before any scoring),
    ``scores`` (a dict of finite floats holding ``primary`` and every ``lower_is_better``
    name), ``deterministic`` (same seed, same scores) and ``truth_beats_noise`` (the ground
    truth scores at least as well as noise on ``primary``, in its declared direction, up to
    ``tolerance``).
    """
    from dbench.errors import UserError
    from dbench.testing.toy import TinyShapes

    sim = TinyShapes() if sim is None else sim
    settings = {"fast": True} if settings is None else dict(settings)
    suite = Suite(f"metric {metric_label(metric, name)}")
    state: dict[str, Any] = {}

    def load() -> str:
        state["spec"] = as_metric(metric, name)
        return repr(state["spec"])

    def applicable() -> str:
        try:
            state["spec"].check(settings, sim)
        except UserError as exc:
            raise NotApplicable(f"not applicable to dataset {sim.name!r}: {exc}") from None
        return f"on dataset {sim.name!r} with {settings}"

    suite.check("load", load)
    suite.check("declaration", lambda: _declaration(state["spec"]), needs=["load"])
    suite.check("refuses_invalid", lambda: _refuses_invalid(state["spec"]), needs=["load"])
    suite.check("applicable", applicable, needs=["load"])
    suite.check("scores", lambda: _scores(state, sim, settings, seed), needs=["applicable"])
    suite.check(
        "deterministic", lambda: _deterministic(state, sim, settings, seed), needs=["scores"]
    )
    suite.check(
        "truth_beats_noise",
        lambda: _truth_beats_noise(state, sim, settings, seed, tolerance),
        needs=["scores", "declaration"],
    )
    return suite.results


def _declaration(spec: Any) -> str:
    expect(
        isinstance(spec.primary, str) and spec.primary,
        f"declares no headline score (primary = {spec.primary!r}); declare it with "
        "dbench.metric_spec.metric(primary=...)",
    )
    expect(
        isinstance(spec.version, str) and spec.version,
        f"version must be a non-empty str; got {spec.version!r}",
    )
    lower = spec.lower_is_better
    expect(
        isinstance(lower, (set, frozenset)) and all(isinstance(k, str) for k in lower),
        f"lower_is_better must be a set of score names; got {lower!r}",
    )
    spec.check(dict(spec.fast))
    direction = "lower" if spec.primary in lower else "higher"
    return f"primary {spec.primary!r} ({direction} is better), version {spec.version!r}"


def _refuses_invalid(spec: Any) -> str:
    """Each setting's constraint read back (:meth:`MetricSpec.constraint`) and every value
    outside it tried: the check a user's typo meets must refuse it in one line."""
    from dbench.errors import UserError

    tried = 0
    for key in spec.parameters:
        rule = spec.constraint(key)
        for value in rule.outside() if rule is not None else ():
            tried += 1
            try:
                spec.check({key: value})
            except UserError as exc:
                expect("\n" not in str(exc), f"{key}={value!r}: a message of several lines")
                continue
            raise AssertionError(f"{key}={value!r} was accepted; it must be {rule.words}")
    if not tried:
        raise NotApplicable("no setting declares or implies a constraint")
    return f"{tried} values outside the settings' constraints refused"


def _score(spec: Any, sim: Any, rep: Any, settings: dict[str, Any], seed: int) -> Any:
    return spec(sim, rep, np.random.default_rng(seed), **settings)


def _scores(state: dict[str, Any], sim: Any, settings: dict[str, Any], seed: int) -> str:
    spec = state["spec"]
    out = _score(spec, sim, truth_representation(sim), settings, seed)
    expect(isinstance(out, dict) and out, f"returned {out!r:.80}, expected a dict of scores")
    bad = {k: v for k, v in out.items() if not isinstance(k, str) or not isinstance(v, float)}
    expect(not bad, f"scores must be floats under str names (run records are JSON); got {bad}")
    infinite = sorted(k for k, v in out.items() if not math.isfinite(v))
    expect(not infinite, f"non-finite scores: {', '.join(infinite)} ({out})")
    if isinstance(spec.primary, str):
        expect(spec.primary in out, f"no primary score {spec.primary!r} in {sorted(out)}")
    absent = sorted(set(spec.lower_is_better) - set(out))
    expect(not absent, f"lower_is_better names scores it never returns: {', '.join(absent)}")
    state["truth"] = out
    return ", ".join(f"{k}={v:.3g}" for k, v in out.items())


def _deterministic(state: dict[str, Any], sim: Any, settings: dict[str, Any], seed: int) -> None:
    again = _score(state["spec"], sim, truth_representation(sim), settings, seed)
    first = state["truth"]
    expect(set(again) == set(first), f"scores {sorted(first)}, then {sorted(again)}")
    changed = {
        k: (first[k], again[k])
        for k in first
        if not math.isclose(first[k], again[k], rel_tol=REL_TOL, abs_tol=1e-12)
    }
    expect(not changed, f"the same seed gave different scores (first, second): {changed}")


def _truth_beats_noise(
    state: dict[str, Any], sim: Any, settings: dict[str, Any], seed: int, tolerance: float
) -> str:
    spec = state["spec"]
    primary = spec.primary
    noise = _score(spec, sim, noise_representation(sim, seed + 1), settings, seed)[primary]
    truth = state["truth"][primary]
    lower = primary in spec.lower_is_better
    ok = truth <= noise + tolerance if lower else truth >= noise - tolerance
    relation = "<=" if lower else ">="
    expect(
        ok,
        f"{primary}: ground truth {truth:.4g} vs noise {noise:.4g}; expected truth {relation} "
        f"noise ({'lower' if lower else 'higher'} is better, tolerance {tolerance})",
    )
    return f"{primary}: truth {truth:.3g} {relation} noise {noise:.3g}"
