"""Sweep plans: requests (``--grid``/``--seeds``/``--set`` or a preset's runs) into RunConfigs.

A sweep is a list of :class:`TrialPlan` (one per request x grid point x seed); the Ray Tune
side (:mod:`dbench.sweep.driver`) only runs them. Everything here is plain Python, so bad
input fails with a one-line :class:`UserError` before any Ray process starts.

Settings stay typed from where they were given to the RunConfig: a request's ``settings`` is
one flat ``{key: value}`` layer (see :mod:`dbench.engine.settings`), each grid point's values
go on top of it, and :func:`dbench.engine.settings.apply` routes the result into the config.
Every distinct configuration is then checked once by
:func:`dbench.engine.settings.check_config`, the same check a single run gets.

A sweep's plan is kept as JSON (:func:`plans_to_json`) so that ``--resume`` rebuilds the same
trials from it (:func:`plans_from_json`) without reading anything Tune pickled.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from dbench.checks import MAX_SWEEP_TRIALS, SEED_MAX
from dbench.contracts import Budget
from dbench.engine.config import RunConfig
from dbench.engine.settings import RESERVED_SCOPES, apply, merge, parse_value
from dbench.errors import UserError

_SEED_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


@dataclass
class TrialPlan:
    """One trial of a sweep: a readable label and the RunConfig it runs."""

    label: str
    config: RunConfig


@dataclass
class SweepRequest:
    """What the user asked for (CLI flags or a preset run), before expansion.

    ``settings``: typed ``{key: value}`` for every trial (keys as for ``--set``, ``MODEL.key``
    included); ``grid``: ``{key: [values]}``, whose cartesian product the trials cover.
    """

    model: str
    dataset: str = "dsprites"
    grid: dict[str, list[Any]] | None = None
    seeds: list[int] | None = None
    settings: dict[str, Any] | None = None
    metrics: list[str] | None = None
    steps: int | None = None
    label: str | None = None


def parse_seeds(text: str | int | list) -> list[int]:
    """``"0-4"``, ``"0,3,7"``, ``"0-2,10"`` or a TOML list -> sorted distinct seeds."""
    if isinstance(text, bool):
        raise UserError(f"bad seeds {text!r}")
    if isinstance(text, int):
        text = str(text)
    if isinstance(text, list):
        text = ",".join(str(s) for s in text)
    ranges = []
    for item in str(text).split(","):
        match = _SEED_ITEM.match(item)
        if not match or len(item) > 40:
            raise UserError(f"bad seeds {_short(text)}: expected e.g. 0-4 or 0,3,7")
        lo, hi = int(match[1]), int(match[2] if match[2] is not None else match[1])
        if hi < lo:
            raise UserError(f"bad seeds {_short(text)}: range {lo}-{hi} is empty")
        if hi > SEED_MAX:
            raise UserError(f"bad seeds {_short(text)}: seeds are integers in 0..{SEED_MAX}")
        ranges.append((lo, hi))
    count, reach = 0, -1  # distinct seeds, counted before any set is built
    for lo, hi in sorted(ranges):
        count += max(0, hi - max(lo, reach + 1) + 1)
        reach = max(reach, hi)
    if count > MAX_SWEEP_TRIALS:
        raise UserError(
            f"bad seeds {_short(text)}: {count:,} seeds; a sweep runs at most "
            f"{MAX_SWEEP_TRIALS:,} trials"
        )
    return sorted({seed for lo, hi in ranges for seed in range(lo, hi + 1)})


def _short(text: Any) -> str:
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes (so ``[1,2],[3,4]`` stays two values)."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``--grid key=v1,v2,...`` items -> {key: values}; values parse like ``--set``.

    A JSON list (``beta=[1,2,4]``) is also accepted; the sweep is the cartesian product.
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise UserError(f"--grid expects key=v1,v2,...; got {item!r}")
        whole = parse_value(raw.strip())
        if isinstance(whole, list):
            values = whole
        else:
            values = [parse_value(p) for p in _split_top_level(raw)]
        if any(isinstance(v, str) and v == "" for v in values) or not values:
            raise UserError(f"--grid {key}: empty value in {raw!r}")
        if key in grid:
            raise UserError(f"--grid {key} is given twice")
        grid[key] = values
    return grid


def _label(base: str, point: dict[str, Any], seed: int) -> str:
    shown = " ".join(
        f"{k}={json.dumps(v) if isinstance(v, (list, dict)) else v}" for k, v in point.items()
    )
    return " ".join(p for p in (base, shown, f"seed={seed}") if p)


def expand(
    requests: list[SweepRequest],
    *,
    device: str = "auto",
    precision: str = "auto",
    data_dir: str | None = None,
    results_dir: str | None = None,
) -> list[TrialPlan]:
    """Every (request x grid point x seed) as a TrialPlan, settings applied and checked.

    Per trial the settings are ``request.settings < grid point < --steps``; ``MODEL.key``
    settings reach only that model's trials, and one naming a model outside the sweep fails.
    """
    from dbench.registry import MODELS

    model_names = MODELS.names()
    planned = 0  # counted before any trial is built
    for req in requests:
        points = 1
        for values in (req.grid or {}).values():
            points *= len(values)
        planned += points * (len(req.seeds) if req.seeds is not None else 1)
    if planned > MAX_SWEEP_TRIALS:
        raise UserError(
            f"the sweep has {planned:,} trials (grid points x seeds); a sweep runs at most "
            f"{MAX_SWEEP_TRIALS:,}"
        )
    plans: list[TrialPlan] = []
    seen: dict[str, str] = {}
    for req in requests:
        MODELS.entry(req.model)  # unknown model: did-you-mean error now
        grid = req.grid or {}
        steps = {"budget.steps": req.steps} if req.steps is not None else {}
        for values in itertools.product(*grid.values()):
            point = dict(zip(grid, values, strict=True))
            settings = merge(req.settings, point, steps)  # --steps wins over budget.steps
            for seed in req.seeds if req.seeds is not None else [0]:
                config = RunConfig(
                    model=req.model,
                    dataset=req.dataset,
                    metrics=list(req.metrics) if req.metrics is not None else None,
                    seed=seed,
                    budget=Budget(),
                    device=device,
                    precision=precision,
                    data_dir=data_dir,
                    results_dir=results_dir,
                )
                apply(config, settings, model=req.model, model_names=model_names)
                label = _label(req.label or req.model, point, seed)
                key = json.dumps(config.to_dict(), sort_keys=True, default=str)
                if key in seen:
                    raise UserError(f"sweep has the same run twice: {seen[key]!r} and {label!r}")
                seen[key] = label
                plans.append(TrialPlan(label, config))
    if not plans:
        raise UserError("the sweep is empty")
    _check_model_scopes(requests, model_names)
    check_plans(plans)
    return plans


def _check_model_scopes(requests: list[SweepRequest], model_names: list[str]) -> None:
    """A ``MODEL.key`` setting for a model that is not in the sweep is a typo."""
    from dbench.registry import METRICS

    others = set(model_names) - RESERVED_SCOPES - set(METRICS.names()) - {r.model for r in requests}
    for req in requests:
        for key in req.settings or {}:
            scope, dot, _ = key.partition(".")
            if dot and scope in others:
                raise UserError(f"setting {key}: model {scope!r} is not in this sweep")


def check_plans(plans: list[TrialPlan]) -> None:
    """Fail before Ray starts: :func:`~dbench.engine.settings.check_config` on every distinct
    configuration (seeds, budgets and paths aside, trials share one check)."""
    from dbench.engine.resolve import default_metrics
    from dbench.engine.settings import check_config

    checked: set[str] = set()
    runs: dict[str, str] = {}
    for plan in plans:
        c = plan.config
        # Metric settings are scored on a run, not part of it: two trials that differ only
        # there would train one run twice (and race for its record).
        run = json.dumps([c.model, c.model_kwargs, c.dataset, c.dataset_kwargs, c.seed,
                          c.budget, c.precision], sort_keys=True, default=str)  # fmt: skip
        if run in runs:
            raise UserError(
                f"trials {runs[run]!r} and {plan.label!r} (seed {c.seed}) are one run: they "
                "differ only in metric settings, which are scored on a run, not part of it; "
                "sweep once, then `dbench score RUN --set METRIC.key=value` for the others"
            )
        runs[run] = plan.label
        metrics = list(c.metrics) if c.metrics is not None else default_metrics()
        key = json.dumps(
            [c.model, c.model_kwargs, c.dataset, c.dataset_kwargs, metrics, c.metric_kwargs],
            sort_keys=True,
            default=str,
        )
        if key not in checked:
            checked.add(key)
            check_config(c, metrics)


#: the JSON type each RunConfig field of a saved plan must have (None: may be null)
_PLAN_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "dataset": (str,),
    "model_kwargs": (dict,),
    "dataset_kwargs": (dict,),
    "metrics": (list, type(None)),
    "settings": (dict,),
    "seed": (int,),
    "budget": (dict,),
    "device": (str,),
    "precision": (str,),
    "data_dir": (str, type(None)),
    "results_dir": (str, type(None)),
    "resume": (bool,),
    "overwrite": (bool,),
}
#: fields of plans written by 0.3 and before: ``metric_kwargs`` becomes ``settings``, and
#: ``show_progress`` is dropped (a trial never prints progress: Ray workers have no terminal)
_OLD_PLAN_TYPES: dict[str, tuple[type, ...]] = {
    "metric_kwargs": (dict,),
    "show_progress": (bool,),
}


def _bad_field(run: dict[str, Any]) -> str | None:
    """The first field of a saved run that RunConfig lacks or that has the wrong JSON type."""
    types = {**_PLAN_TYPES, **_OLD_PLAN_TYPES}
    for key, value in run.items():
        if key not in types or not isinstance(value, types[key]):
            return key
    if any(not isinstance(m, str) for m in run.get("metrics") or []):
        return "metrics"
    if any(not isinstance(v, dict) for v in run.get("metric_kwargs", {}).values()):
        return "metric_kwargs"
    return None


def _current_fields(run: dict[str, Any]) -> dict[str, Any]:
    """A saved run in today's RunConfig keywords (an old plan's fields translated)."""
    by_metric = run.get("metric_kwargs", {})
    flat = {f"{m}.{key}": v for m, values in by_metric.items() for key, v in values.items()}
    current = {k: v for k, v in run.items() if k not in _OLD_PLAN_TYPES}
    if flat:
        current["settings"] = {**flat, **current.get("settings", {})}
    return current


def plans_to_json(plans: list[TrialPlan]) -> list[dict[str, Any]]:
    """The trials as plain JSON values: ``[{"label": ..., "run": RunConfig fields}, ...]``."""
    return [{"label": p.label, "run": p.config.to_dict()} for p in plans]


def plans_from_json(items: Any, where: str) -> list[TrialPlan]:
    """The trials :func:`plans_to_json` wrote, checked as a new sweep's are.

    The plan lives in the results folder, which is untrusted: every field is type-checked,
    unknown fields are refused (those of older plans are translated), a run never overwrites,
    and every configuration goes through :func:`check_plans`. ``where`` names the file in errors.
    """
    if not isinstance(items, list) or not items:
        raise UserError(f"sweep plan {where}: no trials")
    plans: list[TrialPlan] = []
    seen: set[str] = set()
    for n, item in enumerate(items):
        run = item.get("run") if isinstance(item, dict) else None
        if not isinstance(run, dict) or not isinstance(item.get("label"), str):
            raise UserError(f"sweep plan {where}: trial {n} is not {{label, run}}")
        bad = _bad_field(run)
        if bad is not None:
            raise UserError(f"sweep plan {where}: trial {n} has a bad field {bad[:80]!r}")
        run = {**_current_fields(run), "resume": False, "overwrite": False}
        try:
            config = RunConfig(**run)
        except TypeError as exc:  # a missing model, an unknown budget field
            raise UserError(f"sweep plan {where}: trial {n}: {exc}") from None
        key = json.dumps(config.to_dict(), sort_keys=True, default=str)
        if key in seen:  # as expand refuses: two trials would race on one run
            raise UserError(f"sweep plan {where}: trial {n} repeats an earlier trial")
        seen.add(key)
        plans.append(TrialPlan(item["label"], config))
    check_plans(plans)
    return plans
