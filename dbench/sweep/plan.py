"""Sweep plans: ``--grid``/``--seeds`` expansion and TOML presets, turned into RunConfigs.

A sweep is a list of :class:`TrialPlan` (one per grid point x seed); the Ray Tune side
(:mod:`dbench.sweep.driver`) only runs them. Everything here is plain Python, so bad input fails with a
one-line :class:`UserError` before any Ray process starts.

Preset files (``baselines/*.toml``) look like::

    description = "..."
    dataset = "dsprites"
    metrics = ["higgins"]
    seeds = "0-2"
    settings = { "higgins.num_train" = 10000 }   # like --set, for every run

    [[runs]]
    model = "betavae"
    label = "beta-VAE"                          # optional, shown in tables
    settings = { beta = 4 }
    grid = { "budget.steps" = [1000, 2000] }    # optional cartesian product
    seeds = "0-4"                               # optional override
"""

from __future__ import annotations

import inspect
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbench.contracts import Budget
from dbench.engine.config import RunConfig, apply_settings, parse_value
from dbench.errors import UserError

_SEED_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
#: scopes apply_settings routes itself; any other ``X.key`` may name a model of the sweep
_RESERVED_SCOPES = {"model", "dataset", "budget"}
_PRESET_KEYS = {"description", "dataset", "metrics", "seeds", "settings", "runs"}
_RUN_KEYS = {"model", "label", "dataset", "metrics", "seeds", "settings", "grid"}


@dataclass
class TrialPlan:
    """One trial of a sweep: a readable label and the RunConfig it runs."""

    label: str
    config: RunConfig


def parse_seeds(text: str | int | list) -> list[int]:
    """``"0-4"``, ``"0,3,7"``, ``"0-2,10"`` or a TOML list -> sorted distinct seeds."""
    if isinstance(text, bool):
        raise UserError(f"bad seeds {text!r}")
    if isinstance(text, int):
        text = str(text)
    if isinstance(text, list):
        text = ",".join(str(s) for s in text)
    seeds: set[int] = set()
    for item in str(text).split(","):
        match = _SEED_ITEM.match(item)
        if not match:
            raise UserError(f"bad seeds {text!r}: expected e.g. 0-4 or 0,3,7")
        lo, hi = int(match[1]), int(match[2] if match[2] is not None else match[1])
        if hi < lo:
            raise UserError(f"bad seeds {text!r}: range {lo}-{hi} is empty")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


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


def _setting(key: str, value: Any) -> str:
    """A typed value back into the ``key=value`` text apply_settings parses (JSON round trip)."""
    return f"{key}={json.dumps(value)}"


def _for_model(settings: list[str], model: str, model_names: set[str], metric_names: set[str]):
    """Keep settings meant for ``model``: ``pca.n_samples=...`` applies to pca runs only."""
    kept = []
    for item in settings:
        key, _, raw = item.partition("=")
        scope, dot, name = key.strip().partition(".")
        targets_a_model = (
            dot and scope in model_names and scope not in _RESERVED_SCOPES | metric_names
        )
        if not targets_a_model:
            kept.append(item)
        elif scope == model:
            kept.append(f"{name}={raw}")
    return kept


def _label(base: str, point: dict[str, Any], seed: int) -> str:
    shown = " ".join(
        f"{k}={json.dumps(v) if isinstance(v, (list, dict)) else v}" for k, v in point.items()
    )
    return " ".join(p for p in (base, shown, f"seed={seed}") if p)


@dataclass
class SweepRequest:
    """What the user asked for (CLI flags or a preset run), before expansion."""

    model: str
    dataset: str = "dsprites"
    grid: dict[str, list[Any]] | None = None
    seeds: list[int] | None = None
    settings: list[str] | None = None
    metrics: list[str] | None = None
    steps: int | None = None
    label: str | None = None


def expand(
    requests: list[SweepRequest],
    *,
    device: str = "auto",
    data_dir: str | None = None,
    results_dir: str | None = None,
) -> list[TrialPlan]:
    """Every (request x grid point x seed) as a TrialPlan, settings applied and checked."""
    from dbench.registry import METRICS, MODELS

    metric_names, model_names = set(METRICS.names()), set(MODELS.names())
    plans: list[TrialPlan] = []
    seen: dict[str, str] = {}
    for req in requests:
        MODELS.entry(req.model)  # unknown model: did-you-mean error now
        grid = req.grid or {}
        settings = _for_model(req.settings or [], req.model, model_names, metric_names)
        for values in itertools.product(*grid.values()):
            point = dict(zip(grid, values, strict=True))
            for seed in req.seeds if req.seeds is not None else [0]:
                config = RunConfig(
                    model=req.model,
                    dataset=req.dataset,
                    metrics=list(req.metrics) if req.metrics is not None else None,
                    seed=seed,
                    budget=Budget(steps=req.steps),
                    device=device,
                    data_dir=data_dir,
                    results_dir=results_dir,
                    show_progress=False,
                )
                point_settings = [_setting(k, v) for k, v in point.items()]
                apply_settings(config, settings + point_settings, sorted(metric_names))
                if req.steps is not None:  # --steps wins over a preset's budget.steps
                    config.budget = Budget(steps=req.steps, batch_size=config.budget.batch_size)
                label = _label(req.label or req.model, point, seed)
                key = json.dumps(config.to_dict(), sort_keys=True, default=str)
                if key in seen:
                    raise UserError(f"sweep has the same run twice: {seen[key]!r} and {label!r}")
                seen[key] = label
                plans.append(TrialPlan(label, config))
    if not plans:
        raise UserError("the sweep is empty")
    swept = {r.model for r in requests}
    for req in requests:  # a MODEL.key setting for a model not in the sweep is a typo
        for item in req.settings or []:
            scope, dot, _ = item.partition("=")[0].strip().partition(".")
            if dot and scope in model_names - _RESERVED_SCOPES - metric_names - swept:
                raise UserError(f"--set {item}: model {scope!r} is not in this sweep")
    check_plans(plans)
    return plans


def check_plans(plans: list[TrialPlan]) -> None:
    """Fail before Ray starts: names exist and every kwarg is one its component accepts.

    Models are built (cheap, and it catches bad values such as a negative beta); datasets and
    metrics are only checked against their signatures, since building a dataset may load files.
    """
    from dbench.engine.resolve import default_metrics
    from dbench.registry import DATASETS, METRICS, MODELS

    checked: set[str] = set()
    for plan in plans:
        c = plan.config
        key = json.dumps(
            [c.model, c.model_kwargs, c.dataset, c.dataset_kwargs, c.metrics, c.metric_kwargs],
            sort_keys=True,
            default=str,
        )
        if key in checked:
            continue
        checked.add(key)
        MODELS.create(c.model, **c.model_kwargs)
        _check_kwargs(
            f"dataset {c.dataset!r}",
            DATASETS.get(c.dataset),
            c.dataset_kwargs,
            skip=1 if inspect.isclass(DATASETS.get(c.dataset)) else 0,
        )
        metrics = c.metrics if c.metrics is not None else default_metrics()
        for name in metrics:
            METRICS.get(name)
        for name, kwargs in c.metric_kwargs.items():
            if name not in metrics:
                raise UserError(
                    f"settings given for metric {name!r}, which this sweep does not score"
                )
            _check_kwargs(
                f"metric {name!r}", METRICS.get(name), {"_": None, **kwargs}, skip=0, positional=3
            )


def _check_kwargs(what: str, fn: Any, kwargs: dict, skip: int = 0, positional: int = 0) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without signatures: let the run decide
        return
    kwargs = {k: v for k, v in kwargs.items() if k != "_"}
    try:
        sig.bind(*([None] * positional), **kwargs)
    except TypeError as exc:
        raise UserError(f"bad settings for {what}: {exc}") from None


# -- presets ----------------------------------------------------------------------------------


def preset_dirs() -> list[Path]:
    """Where preset names are looked up: ./baselines, then the source tree's baselines/."""
    here = Path(__file__).resolve().parents[1] / "baselines"
    dirs = [Path.cwd() / "baselines", here]
    return list(dict.fromkeys(d for d in dirs if d.is_dir()))


def available_presets() -> list[str]:
    names = {p.stem for d in preset_dirs() for p in d.glob("*.toml")}
    return sorted(names)


def find_preset(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".toml" or "/" in name:
        if path.is_file():
            return path
        raise UserError(f"preset file {name} does not exist")
    for folder in preset_dirs():
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    known = ", ".join(available_presets()) or "none found"
    raise UserError(f"unknown preset {name!r} (available: {known})")


def load_preset(name: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise UserError("presets need Python 3.11 or newer (tomllib)") from None
    path = find_preset(name)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read preset {path}: {exc}") from None
    unknown = set(data) - _PRESET_KEYS
    if unknown:
        raise UserError(f"preset {path}: unknown keys {sorted(unknown)} ({sorted(_PRESET_KEYS)})")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise UserError(f"preset {path}: needs at least one [[runs]] table")
    for i, run in enumerate(runs):
        bad = set(run) - _RUN_KEYS
        if "model" not in run or bad:
            raise UserError(
                f"preset {path}: run {i + 1} needs a model and only {sorted(_RUN_KEYS)}"
                + (f"; got {sorted(bad)}" if bad else "")
            )
    data["path"] = str(path)
    return data


def preset_requests(
    preset: dict[str, Any],
    *,
    dataset: str | None = None,
    seeds: list[int] | None = None,
    metrics: list[str] | None = None,
    settings: list[str] | None = None,
    grid: dict[str, list[Any]] | None = None,
    steps: int | None = None,
) -> list[SweepRequest]:
    """One request per ``[[runs]]`` entry; command-line values override the preset's."""

    def as_settings(table: Any, where: str) -> list[str]:
        if table is None:
            return []
        if not isinstance(table, dict):
            raise UserError(f"preset {preset['path']}: {where} settings must be a table")
        return [_setting(k, v) for k, v in table.items()]

    requests = []
    for run in preset["runs"]:
        run_grid = dict(run.get("grid") or {})
        for key, values in run_grid.items():
            if not isinstance(values, list) or not values:
                raise UserError(f"preset {preset['path']}: grid {key} must be a non-empty list")
        run_grid.update(grid or {})
        run_seeds = run.get("seeds", preset.get("seeds", 0))
        requests.append(
            SweepRequest(
                model=run["model"],
                dataset=dataset or run.get("dataset") or preset.get("dataset", "dsprites"),
                grid=run_grid,
                seeds=seeds if seeds is not None else parse_seeds(run_seeds),
                settings=as_settings(preset.get("settings"), "top-level")
                + as_settings(run.get("settings"), f"run {run['model']!r}")
                + list(settings or []),
                metrics=metrics
                if metrics is not None
                else run.get("metrics", preset.get("metrics")),
                steps=steps,
                label=run.get("label"),
            )
        )
    return requests
