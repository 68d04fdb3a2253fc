"""The Model contract, checked by a tiny fit: :func:`check_model`.

A model is fitted for a few steps on a small simulator (by default :class:`TinyShapes`), then
its codes are checked: shape ``(n, D)``, finite, deterministic, and identical after a save and
a load into a fresh instance, the round trip ``dbench rescore`` relies on.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dbench.contracts import Budget, Decoder, FitContext, HasParams, Observations
from dbench.progress import quiet
from dbench.testing.results import CheckResult, NotApplicable, Suite, expect

#: the tiny training budget of a model check: enough to run every part of a training loop
TINY_BUDGET = Budget(steps=2, batch_size=8)


def as_array(z: Any) -> np.ndarray:
    """Codes as a numpy array (tensors are detached and moved to the CPU)."""
    if hasattr(z, "detach"):
        z = z.detach().cpu().numpy()
    return np.asarray(z)


def model_factory(
    model: str | Callable[..., Any], model_kwargs: Mapping[str, Any] | None = None
) -> tuple[str, Callable[..., Any], bool]:
    """(label, factory, rebuildable) for a registered name or a class / zero-argument factory.

    ``factory(**params)`` builds a fresh model, ``model_kwargs`` first; ``rebuildable`` says
    whether it accepts hyperparameters (names and classes do, other callables need not).
    """
    kwargs = dict(model_kwargs or {})
    if isinstance(model, str):
        from dbench.registry import MODELS

        def by_name(**params: Any) -> Any:
            return MODELS.create(model, **{**kwargs, **params})

        return model, by_name, True

    def by_call(**params: Any) -> Any:
        return model(**{**kwargs, **params})

    label = getattr(model, "__name__", type(model).__name__)
    return label, by_call, inspect.isclass(model)


def observations(sim: Any, n: int, seed: int) -> Observations:
    """A fresh batch of ``n`` observations drawn with ``seed`` (same seed, same batch)."""
    rng = np.random.default_rng(seed)
    v = sim.sample_factors(n, rng)
    w = sim.sample_nuisance(n, rng)
    return Observations(v, w, _render=lambda: sim.sim(v, w))


def check_model(
    model: str | Callable[..., Any],
    sim: Any = None,
    *,
    model_kwargs: Mapping[str, Any] | None = None,
    budget: Budget = TINY_BUDGET,
    n: int = 16,
    seed: int = 0,
    device: str = "cpu",
) -> list[CheckResult]:
    """Check a model (a registered name, a class, or a factory) by a tiny fit on ``sim``.

    ``sim`` defaults to :class:`~dbench.testing.toy.TinyShapes`. Checks: ``construct``,
    ``members`` (``fit``/``encode``/``save``/``load``; ``default_budget`` a Budget if set),
    ``get_params`` (a dict that rebuilds the same model, when :class:`HasParams`),
    ``refuses_invalid`` (when the class declares ``constraints``: each value outside each one,
    given alone, is refused with a one-line UserError naming the hyperparameter), ``fit``
    (``budget`` on ``device`` in a temporary workdir; returns the model), ``encode``
    (``(n, D)`` finite codes), ``encode_deterministic``, ``save_load`` (a fresh instance
    loaded from the saved state gives identical codes) and ``decode`` (images in [0, 1] of
    the observation shape, when :class:`Decoder`).
    """
    from dbench.testing.toy import TinyShapes

    label, factory, rebuildable = model_factory(model, model_kwargs)
    sim = TinyShapes() if sim is None else sim
    suite = Suite(f"model {label}")
    state: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dbench-check-") as tmp:
        workdir = Path(tmp)

        def construct() -> str:
            state["model"] = factory()
            cls = type(state["model"])
            return f"{cls.__module__}.{cls.__qualname__}"

        suite.check("construct", construct)
        suite.check("members", lambda: _members(state["model"]), needs=["construct"])
        suite.check(
            "get_params",
            lambda: _get_params(state["model"], factory, rebuildable),
            needs=["construct"],
        )
        suite.check(
            "refuses_invalid",
            lambda: refuses_invalid(state["model"], factory if rebuildable else None),
            needs=["construct"],
        )
        suite.check(
            "fit",
            lambda: _fit(state["model"], sim, budget, seed, device, workdir),
            needs=["members"],
        )
        suite.check("encode", lambda: _encode(state, sim, n, seed), needs=["fit"])
        suite.check(
            "encode_deterministic", lambda: _encode_again(state, sim, n, seed), needs=["encode"]
        )
        suite.check(
            "save_load", lambda: _save_load(state, factory, sim, n, seed, workdir), needs=["encode"]
        )
        suite.check("decode", lambda: _decode(state, sim), needs=["encode"])
    return suite.results


def check_members(model: Any) -> list[CheckResult]:
    """Only the ``members`` check of :func:`check_model`: cheap, nothing is fitted."""
    suite = Suite(f"model {type(model).__name__}")
    suite.check("members", lambda: _members(model))
    return suite.results


def _members(model: Any) -> str | None:
    missing = [
        m for m in ("fit", "encode", "save", "load") if not callable(getattr(model, m, None))
    ]
    expect(not missing, f"missing methods {', '.join(missing)} (required by the Model protocol)")
    if not hasattr(model, "default_budget"):
        return "no default_budget (runs without a budget use Budget())"
    budget = model.default_budget
    expect(isinstance(budget, Budget), f"default_budget must be a Budget; got {budget!r}")
    return f"default budget {budget.as_dict()}"


def _get_params(model: Any, factory: Callable[..., Any], rebuildable: bool) -> str:
    if not isinstance(model, HasParams):
        raise NotApplicable("does not declare HasParams")
    params = model.get_params()
    expect(isinstance(params, dict), f"get_params returned {type(params).__name__}, not a dict")
    expect(all(isinstance(k, str) for k in params), f"non-str keys in {params!r}")
    if not rebuildable:
        return "(not rebuilt: the factory is not a class)"
    again = factory(**params).get_params()
    expect(
        again == params,
        f"a model built from get_params() reports {again!r}, not {params!r}",
    )
    return ", ".join(f"{k}={v!r}" for k, v in params.items())[:120]


def refuses_invalid(component: Any, build: Callable[..., Any] | None) -> str:
    """The check of a model's or a dataset's declared ``constraints`` (:mod:`dbench.checks`):
    every value outside each one, given alone to ``build``, must be refused with a one-line
    UserError that names the parameter; what a typo in ``--set`` meets. A component that
    declares nothing predates declarations: not applicable, not failed."""
    from dbench.errors import UserError

    constraints = getattr(component, "constraints", None)
    if not constraints:
        raise NotApplicable("declares no constraints")
    if build is None:
        raise NotApplicable("no factory that takes its parameters to rebuild it with")
    params = inspect.signature(type(component)).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(constraints) - set(params))
        expect(not unknown, f"constraints for {unknown}, which are no __init__ keywords")
    tried = 0
    for key, rule in constraints.items():
        for value in rule.outside():
            tried += 1
            try:
                build(**{key: value})
            except UserError as exc:
                text = str(exc)
                expect("\n" not in text, f"{key}={value!r}: a message of several lines")
                expect(key in text, f"{key}={value!r}: the message does not name {key!r}: {text}")
                continue
            except Exception as exc:
                raise AssertionError(
                    f"{key}={value!r} raised {type(exc).__name__} ({exc}), not a UserError"
                ) from None
            raise AssertionError(f"{key}={value!r} was accepted; it must be {rule.words}")
    if not tried:
        raise NotApplicable("its constraints name no values outside them")
    return f"{tried} values outside {len(constraints)} constraints refused"


def _fit(model: Any, sim: Any, budget: Budget, seed: int, device: str, workdir: Path) -> str:
    work = workdir / "fit"
    work.mkdir()
    ctx = FitContext(device=device, budget=budget, workdir=work)
    with quiet():  # a check prints no training bars
        fitted = model.fit(sim, np.random.default_rng(seed), ctx)
    expect(
        fitted is model,
        f"fit returned {type(fitted).__name__}, not the model itself (fit returns self)",
    )
    return f"budget {budget.as_dict()} on {device}"


def _encode(state: dict[str, Any], sim: Any, n: int, seed: int) -> str:
    raw = state["model"].encode(observations(sim, n, seed + 1))
    z = as_array(raw)
    expect(z.ndim == 2, f"codes have shape {z.shape}, expected (n, D) = ({n}, D)")
    expect(z.shape[0] == n and z.shape[1] >= 1, f"codes have shape {z.shape} for n={n}")
    expect(np.issubdtype(z.dtype, np.number), f"codes have dtype {z.dtype}")
    expect(np.isfinite(z).all(), "codes hold NaN or infinite values")
    state["z"] = z
    return f"codes {z.shape}, {type(raw).__module__.split('.')[0]} {z.dtype}"


def _encode_again(state: dict[str, Any], sim: Any, n: int, seed: int) -> None:
    z = as_array(state["model"].encode(observations(sim, n, seed + 1)))
    _expect_same_codes(state["z"], z, "encoding the same observations twice")


def _save_load(
    state: dict[str, Any], factory: Callable[..., Any], sim: Any, n: int, seed: int, workdir: Path
) -> None:
    path = workdir / "model.state"
    state["model"].save(path)
    expect(path.exists(), f"save({path.name}) wrote nothing at the path it was given")
    fresh = factory()
    loaded = fresh.load(path)
    loaded = fresh if loaded is None else loaded
    z = as_array(loaded.encode(observations(sim, n, seed + 1)))
    _expect_same_codes(state["z"], z, "a fresh instance loaded from the saved state")


def _expect_same_codes(want: np.ndarray, got: np.ndarray, what: str) -> None:
    expect(got.shape == want.shape, f"{what} gave codes of shape {got.shape}, not {want.shape}")
    if not np.array_equal(got, want):
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64)).max()
        raise AssertionError(f"{what} gave different codes (max difference {diff:.3g})")


def _decode(state: dict[str, Any], sim: Any) -> str:
    model = state["model"]
    if not isinstance(model, Decoder):
        raise NotApplicable("does not declare Decoder")
    x = as_array(model.decode(state["z"]))
    want = (len(state["z"]), *(int(s) for s in sim.observation_shape))
    expect(x.shape == want, f"decode gave shape {x.shape}, expected {want}")
    expect(np.isfinite(x).all(), "decoded images hold NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    expect(lo >= 0.0 and hi <= 1.0, f"decoded values span [{lo:.4g}, {hi:.4g}], expected [0, 1]")
    return f"images {want[1:]}"
