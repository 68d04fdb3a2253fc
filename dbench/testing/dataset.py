"""The Simulator contract, checked on one dataset instance: :func:`check_dataset`.

A dataset is the simulator ``x ~ Sim(v, w)`` of Higgins et al. (2017, Sec. 3): factor indices
``v`` drawn uniformly from a grid, an optional nuisance ``w``, and images in [0, 1].
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from dbench.contracts import FiniteGrid, PairSampler
from dbench.testing.model import refuses_invalid
from dbench.testing.results import CheckResult, NotApplicable, Suite, expect

MEMBERS = (
    "name",
    "factor_names",
    "factor_sizes",
    "observation_shape",
    "sample_factors",
    "sample_nuisance",
    "sim",
    "describe",
)
METHODS = ("sample_factors", "sample_nuisance", "sim", "describe")
#: factors with at most this many values must each show every value in ``COVERAGE_DRAWS``
COVERAGE_MAX_SIZE = 50
COVERAGE_DRAWS = 2000


def is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def check_dataset(
    sim: Any,
    *,
    name: str | None = None,
    n: int = 4,
    seed: int = 0,
    factory: Callable[..., Any] | None = None,
) -> list[CheckResult]:
    """Check ``sim`` against the Simulator protocol; ``n`` images are rendered a few times.

    Checks: ``members`` (names, types, lengths), ``sample_factors`` (shape, integer dtype,
    bounds, every value reachable, same seed same draw), ``sample_nuisance`` (None or ``n``
    rows, consistent with ``has_nuisance``, seeded), ``sim`` (a float32 torch tensor
    ``(n, C, H, W)``, finite, in [0, 1], {0, 1} when ``binary``, arguments left unchanged),
    ``sim_deterministic`` (same ``v`` and ``w``, same images), ``nuisance_used`` (images
    depend on ``w`` when there is one), ``describe`` (JSON with ``source`` and ``checksum``),
    ``refuses_invalid`` (when the dataset declares ``constraints``: each value outside each
    one, given alone to ``factory``, default ``type(sim)``, is refused with a one-line
    UserError naming the argument; not applicable to a class with required arguments and no
    ``factory``),
    ``finite_grid`` (row-major ``index_of``/``factors_of`` round trip, when declared) and
    ``sample_pairs`` (when :class:`PairSampler` is declared: pairs differ in exactly k
    factors for each fixed k, in 1..d-1 for ``k=None``, never in none, only in factors that
    vary; in range; seeded).
    """
    label = f"dataset {name or getattr(sim, 'name', None) or type(sim).__name__}"
    suite = Suite(label)
    state: dict[str, Any] = {}
    suite.check("members", lambda: _members(sim))
    suite.check("sample_factors", lambda: _sample_factors(sim, n, seed, state), needs=["members"])
    suite.check("sample_nuisance", lambda: _sample_nuisance(sim, n, seed, state), needs=["members"])
    suite.check("sim", lambda: _images(sim, n, state), needs=["sample_factors", "sample_nuisance"])
    suite.check("sim_deterministic", lambda: _deterministic(sim, state), needs=["sim"])
    suite.check("nuisance_used", lambda: _nuisance_used(sim, seed, state), needs=["sim"])
    suite.check("describe", lambda: _describe(sim), needs=["members"])
    suite.check("refuses_invalid", lambda: refuses_invalid(sim, factory or _rebuilder(sim)))
    suite.check("finite_grid", lambda: _finite_grid(sim, n, seed, state), needs=["sample_factors"])
    suite.check("sample_pairs", lambda: _sample_pairs(sim, seed), needs=["sample_factors"])
    return suite.results


def _rebuilder(sim: Any) -> Callable[..., Any] | None:
    """``type(sim)`` when it can be called with one keyword alone (no required arguments)."""
    try:
        params = inspect.signature(type(sim)).parameters.values()
    except (TypeError, ValueError):
        return None
    varargs = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    required = [p for p in params if p.default is p.empty and p.kind not in varargs]
    return None if required else type(sim)


def _members(sim: Any) -> str:
    missing = [m for m in MEMBERS if not hasattr(sim, m)]
    expect(not missing, f"missing {', '.join(missing)} (required by the Simulator protocol)")
    not_callable = [m for m in METHODS if not callable(getattr(sim, m))]
    expect(not not_callable, f"not callable: {', '.join(not_callable)}")
    expect(
        isinstance(sim.name, str) and sim.name, f"name must be a non-empty str; got {sim.name!r}"
    )
    names, sizes, shape = sim.factor_names, sim.factor_sizes, sim.observation_shape
    expect(
        isinstance(names, (tuple, list)) and names and all(isinstance(s, str) for s in names),
        f"factor_names must be a non-empty tuple of str; got {names!r}",
    )
    expect(len(set(names)) == len(names), f"factor_names repeat a name: {names!r}")
    expect(
        isinstance(sizes, (tuple, list)) and all(is_int(s) and s >= 1 for s in sizes),
        f"factor_sizes must be a tuple of ints >= 1; got {sizes!r}",
    )
    expect(
        len(names) == len(sizes),
        f"{len(names)} factor_names but {len(sizes)} factor_sizes",
    )
    expect(
        isinstance(shape, (tuple, list))
        and len(shape) == 3
        and all(is_int(s) and s >= 1 for s in shape),
        f"observation_shape must be (C, H, W) of positive ints; got {shape!r}",
    )
    return f"{len(names)} factors {tuple(int(s) for s in sizes)}, images {tuple(shape)}"


def _sample_factors(sim: Any, n: int, seed: int, state: dict[str, Any]) -> None:
    k = len(sim.factor_sizes)
    sizes = np.asarray(sim.factor_sizes, dtype=np.int64)
    v = sim.sample_factors(n, np.random.default_rng(seed))
    expect(isinstance(v, np.ndarray), f"returned {type(v).__name__}, expected a numpy array")
    expect(v.shape == (n, k), f"shape {v.shape} for n={n}, expected ({n}, {k})")
    expect(np.issubdtype(v.dtype, np.integer), f"dtype {v.dtype}, expected int64 indices")
    bad = [
        f"{sim.factor_names[i]} in [{v[:, i].min()}, {v[:, i].max()}] (size {sizes[i]})"
        for i in range(k)
        if v[:, i].min() < 0 or v[:, i].max() >= sizes[i]
    ]
    expect(not bad, f"factor index out of range: {'; '.join(bad)}")
    again = sim.sample_factors(n, np.random.default_rng(seed))
    expect(np.array_equal(v, again), "two generators with the same seed gave different factors")
    many = sim.sample_factors(COVERAGE_DRAWS, np.random.default_rng(seed + 1))
    for i, size in enumerate(sizes):
        seen = len(np.unique(many[:, i]))
        wanted = size if size <= COVERAGE_MAX_SIZE else min(size, 2)
        expect(
            seen >= wanted,
            f"factor {sim.factor_names[i]} took {seen} of its {size} values in "
            f"{COVERAGE_DRAWS} draws (factors are drawn uniformly over their values)",
        )
    state["v"] = v


def _sample_nuisance(sim: Any, n: int, seed: int, state: dict[str, Any]) -> str:
    declared = getattr(sim, "has_nuisance", None)
    w = sim.sample_nuisance(n, np.random.default_rng(seed))
    state["w"] = w
    if w is None:
        expect(declared is not True, "has_nuisance is True but sample_nuisance returned None")
        return "no nuisance"
    expect(
        declared is not False,
        "has_nuisance is False but sample_nuisance returned values (grid indices would no "
        "longer identify images)",
    )
    expect(hasattr(w, "__len__") and len(w) == n, f"expected None or {n} rows; got {w!r:.80}")
    again = sim.sample_nuisance(n, np.random.default_rng(seed))
    expect(
        np.array_equal(np.asarray(w), np.asarray(again)),
        "two generators with the same seed gave different nuisance",
    )
    return f"nuisance shape {np.shape(w)}"


def _images(sim: Any, n: int, state: dict[str, Any]) -> str:
    import torch

    v, w = state["v"], state["w"]
    v_before = v.copy()
    w_before = None if w is None else np.array(w, copy=True)
    x = sim.sim(v, w)
    expect(isinstance(x, torch.Tensor), f"returned {type(x).__name__}, expected a torch.Tensor")
    expect(x.dtype == torch.float32, f"dtype {x.dtype}, expected torch.float32")
    want = (n, *(int(s) for s in sim.observation_shape))
    expect(tuple(x.shape) == want, f"shape {tuple(x.shape)}, expected {want}")
    x = x.detach().cpu()
    expect(bool(torch.isfinite(x).all()), "images hold NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    expect(lo >= 0.0 and hi <= 1.0, f"values span [{lo:.4g}, {hi:.4g}], expected [0, 1]")
    if getattr(sim, "binary", False):
        expect(bool(((x == 0) | (x == 1)).all()), "binary = True but pixels other than 0 and 1")
    expect(np.array_equal(v, v_before), "sim changed its factor argument in place")
    expect(
        w is None or np.array_equal(np.asarray(w), w_before),
        "sim changed its nuisance argument in place",
    )
    state["x"] = x
    return f"values in [{lo:.3g}, {hi:.3g}]"


def _deterministic(sim: Any, state: dict[str, Any]) -> None:
    import torch

    w = state["w"]
    again = sim.sim(state["v"].copy(), None if w is None else np.array(w, copy=True))
    diff = (again.detach().cpu() - state["x"]).abs()
    expect(
        torch.equal(again.detach().cpu(), state["x"]),
        f"the same v and w gave different images (max difference {float(diff.max()):.3g})",
    )


def _nuisance_used(sim: Any, seed: int, state: dict[str, Any]) -> None:
    import torch

    if state["w"] is None:
        raise NotApplicable("no nuisance")
    rng = np.random.default_rng(seed + 2)
    v = np.repeat(state["v"][:1], 4, axis=0)
    x = sim.sim(v, sim.sample_nuisance(4, rng)).detach().cpu()
    expect(
        any(not torch.equal(x[0], x[i]) for i in range(1, 4)),
        "images do not depend on w: 4 nuisance draws gave one image for the same factors "
        "(a dataset without a nuisance returns None from sample_nuisance)",
    )


def _describe(sim: Any) -> str:
    info = sim.describe()
    expect(isinstance(info, dict), f"returned {type(info).__name__}, expected a dict")
    expect(info.get("source"), f"no 'source' (where the images come from): {info!r:.120}")
    expect(info.get("checksum"), f"no 'checksum' (which images exactly): {info!r:.120}")
    try:
        json.dumps(info)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"not plain JSON (run records store it): {exc}") from None
    return f"source {info['source']!r}"


def _finite_grid(sim: Any, n: int, seed: int, state: dict[str, Any]) -> str:
    if not isinstance(sim, FiniteGrid):
        have = [
            m
            for m in ("num_observations", "has_nuisance", "index_of", "factors_of")
            if hasattr(sim, m)
        ]
        partial = f" (has only {', '.join(have)})" if have else ""
        raise NotApplicable(f"does not declare FiniteGrid{partial}")
    sizes = np.asarray(sim.factor_sizes, dtype=np.int64)
    total = int(np.prod(sizes))
    expect(
        int(sim.num_observations) == total,
        f"num_observations is {sim.num_observations}, the grid {tuple(sizes)} has {total}",
    )
    expect(
        isinstance(sim.has_nuisance, (bool, np.bool_)),
        f"has_nuisance must be a bool; got {sim.has_nuisance!r}",
    )
    v = state["v"]
    index = np.asarray(sim.index_of(v))
    expect(index.shape == (n,), f"index_of gave shape {index.shape} for {n} factor vectors")
    expect(np.issubdtype(index.dtype, np.integer), f"index_of gave dtype {index.dtype}")
    strides = np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]])
    expect(
        np.array_equal(index, v @ strides),
        "index_of is not the row-major grid index (last factor fastest)",
    )
    back = np.asarray(sim.factors_of(index))
    expect(np.array_equal(back, v), "factors_of(index_of(v)) != v")
    rng = np.random.default_rng(seed + 3)
    probe = np.unique(np.concatenate([[0, total - 1], rng.integers(0, total, 16)]))
    expect(
        np.array_equal(np.asarray(sim.index_of(sim.factors_of(probe))), probe),
        "index_of(factors_of(i)) != i",
    )
    return f"{total} observations" + (", with nuisance" if sim.has_nuisance else "")


#: pairs drawn per value of k by the ``sample_pairs`` check
PAIR_DRAWS = 64


def _sample_pairs(sim: Any, seed: int) -> str:
    if not isinstance(sim, PairSampler):
        raise NotApplicable("does not declare PairSampler")
    sizes = np.asarray(sim.factor_sizes, dtype=np.int64)
    varying = sizes > 1
    d = int(varying.sum())
    if d == 0:
        raise NotApplicable("no factor has more than one value")
    n = PAIR_DRAWS
    for k in [*range(1, d + 1), None]:
        v1, v2 = sim.sample_pairs(n, k, np.random.default_rng(seed))
        for v in (v1, v2):
            expect(isinstance(v, np.ndarray), f"k={k}: returned {type(v).__name__}, not arrays")
            want = (n, len(sizes))
            expect(v.shape == want, f"k={k}: shape {v.shape}, expected {want}")
            expect(np.issubdtype(v.dtype, np.integer), f"k={k}: dtype {v.dtype}, not integers")
            expect(
                ((v >= 0) & (v < sizes)).all(), f"k={k}: factor index out of range {tuple(sizes)}"
            )
        differ = v1 != v2
        expect(
            not differ[:, ~varying].any(), f"k={k}: a factor with a single value differs in a pair"
        )
        count = differ.sum(1)
        expect((count > 0).all(), f"k={k}: a pair differs in no factor (it must differ in k)")
        if k is None:
            top = max(d - 1, 1)
            expect(
                (count <= top).all(),
                f"k=None: a pair differs in {count.max()} factors (k is drawn from 1..{top})",
            )
        else:
            bad = count[count != k]
            expect(not len(bad), f"k={k}: a pair differs in {bad[:1].tolist()} factors, not {k}")
        again = sim.sample_pairs(n, k, np.random.default_rng(seed))
        expect(
            np.array_equal(again[0], v1) and np.array_equal(again[1], v2),
            f"k={k}: two generators with the same seed gave different pairs",
        )
    return f"k = 1..{d} and random"
