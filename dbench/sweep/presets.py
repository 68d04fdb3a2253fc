"""Sweep presets: TOML files (``baselines/*.toml``) that name a sweep of several models.

A preset looks like::

    description = "..."
    dataset = "dsprites"                        # or datasets = ["dsprites", "shapes3d"]
    metrics = ["higgins"]
    seeds = "0-2"
    settings = { "higgins.num_train" = 10000 }   # like --set, for every run

    [[runs]]
    model = "betavae"
    label = "beta-VAE"                          # optional, shown in tables
    settings = { beta = 4 }
    grid = { "budget.steps" = [1000, 2000] }    # optional cartesian product
    seeds = "0-4"                               # optional override

Values stay as TOML typed them (a list stays a list). A run's settings are one
:func:`dbench.engine.settings.merge` of the preset's ``settings``, the run's ``settings`` and
the command line's ``--set``, later layers winning; :func:`preset_requests` turns each run
into a :class:`~dbench.sweep.plan.SweepRequest`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dbench.checks import POSITIVE_INT, Constraint, ListOf, OfType
from dbench.engine.settings import for_model, merge
from dbench.errors import UserError
from dbench.sweep.plan import SweepRequest, parse_seeds

TEXT = OfType((str,), "a string")
TABLE = OfType((dict,), "a table")
NAMES = ListOf(OfType((str,)), "a list of names")
#: "0-4", 3 or [0, 3]: parse_seeds reads the text
SEEDS = OfType((str, int, list), 'a range such as "0-4", an integer or a list')
#: the type of each key a preset may hold ([[runs]] is checked table by table)
_PRESET_TYPES: dict[str, Constraint] = {
    "description": TEXT,
    "dataset": TEXT,
    "datasets": ListOf(OfType((str,)), "a list of names", min_len=1),
    "metrics": NAMES,
    "seeds": SEEDS,
    "settings": TABLE,
}
_PRESET_KEYS = {*_PRESET_TYPES, "runs"}
#: the type of each key of a [[runs]] table
_RUN_TYPES: dict[str, Constraint] = {
    "model": TEXT,
    "label": TEXT,
    "dataset": TEXT,
    "metrics": NAMES,
    "seeds": SEEDS,
    "settings": TABLE,
    "grid": TABLE,
}
_RUN_KEYS = set(_RUN_TYPES)
#: each axis of a run's grid
GRID_VALUES = ListOf(None, "a non-empty list", min_len=1)


def preset_dirs() -> list[Path]:
    """Where preset names are looked up: ./baselines, then the source tree's baselines/."""
    here = Path(__file__).resolve().parents[2] / "baselines"
    dirs = [Path.cwd() / "baselines", here]
    return list(dict.fromkeys(d for d in dirs if d.is_dir()))


def available_presets() -> list[str]:
    """Names of the presets in :func:`preset_dirs`."""
    names = {p.stem for d in preset_dirs() for p in d.glob("*.toml")}
    return sorted(names)


def find_preset(name: str) -> Path:
    """A preset's file: ``name`` as a path (``.toml`` or with a ``/``), else looked up."""
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
    """The preset's TOML, its keys checked; ``path`` added."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the same parser from PyPI (declared for 3.10 in pyproject.toml)
        import tomli as tomllib
    path = find_preset(name)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read preset {path}: {exc}") from None
    unknown = set(data) - _PRESET_KEYS
    if unknown:
        raise UserError(f"preset {path}: unknown keys {sorted(unknown)} ({sorted(_PRESET_KEYS)})")
    for key, rule in _PRESET_TYPES.items():
        if key in data:
            rule.check(f"preset {path}: {key}", data[key])
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise UserError(f"preset {path}: needs at least one [[runs]] table")
    for i, run in enumerate(runs):
        bad = set(run) - _RUN_KEYS if isinstance(run, dict) else set()
        if not isinstance(run, dict) or "model" not in run or bad:
            raise UserError(
                f"preset {path}: run {i + 1} needs a model and only {sorted(_RUN_KEYS)}"
                + (f"; got {sorted(bad)}" if bad else "")
            )
        for key, rule in _RUN_TYPES.items():
            if key in run:
                rule.check(f"preset {path}: run {i + 1} {key}", run[key])
    data["path"] = str(path)
    return data


def _table(preset: dict[str, Any], value: Any, where: str) -> dict[str, Any]:
    return {} if value is None else TABLE.check(f"preset {preset['path']}: {where}", value)


def preset_requests(
    preset: dict[str, Any],
    *,
    dataset: str | None = None,
    seeds: list[int] | None = None,
    metrics: list[str] | None = None,
    settings: dict[str, Any] | None = None,
    grid: dict[str, list[Any]] | None = None,
    steps: int | None = None,
    grid_points: int | None = None,
) -> list[SweepRequest]:
    """One request per ``[[runs]]`` entry and dataset; command-line values override the
    preset's.

    ``settings``: the command line's, already typed (``engine.settings.parse_items``).
    ``dataset``: one name or several, comma-separated (a slice of a preset's ``datasets``).
    ``grid_points``: keep at most this many values of each of the preset's grid axes, evenly
    spaced and both ends included (``3`` of beta 1, 2, 4, 6, 8, 16 is 1, 4, 16): a slice that
    still spans each hyperparameter's range.
    """
    from dbench.registry import MODELS

    names = MODELS.names()
    top = _table(preset, preset.get("settings"), "top-level settings")
    if grid_points is not None:
        POSITIVE_INT.check("--grid-points", grid_points)
    requests = []
    for run, run_dataset in _runs_by_dataset(preset, dataset):
        where = f"run {run['model']!r}"
        run_grid = dict(_table(preset, run.get("grid"), f"{where} grid"))
        for key, values in run_grid.items():
            GRID_VALUES.check(f"preset {preset['path']}: grid {key}", values)
            if grid_points is not None:
                run_grid[key] = spread(values, grid_points)
        run_grid.update(grid or {})
        run_seeds = run.get("seeds", preset.get("seeds", 0))
        run_settings = _table(preset, run.get("settings"), f"{where} settings")
        layers = (top, run_settings, settings)
        run_metrics = run.get("metrics", preset.get("metrics"))
        requests.append(
            SweepRequest(
                model=run["model"],
                dataset=run_dataset,
                grid=run_grid,
                seeds=seeds if seeds is not None else parse_seeds(run_seeds),
                # command line > run > top; MODEL.key ranks by its layer like a plain key
                settings=merge(*(for_model(x, run["model"], names) for x in layers)),
                metrics=metrics if metrics is not None else run_metrics,
                steps=steps,
                label=run.get("label"),
            )
        )
    return requests


def _runs_by_dataset(preset: dict[str, Any], chosen: str | None) -> list[tuple[dict, str]]:
    """(run, dataset) pairs: every run on each of the preset's datasets (or the chosen ones)."""
    if chosen:
        names = [d.strip() for d in chosen.split(",") if d.strip()]
        return [(run, name) for name in names for run in preset["runs"]]
    listed = preset.get("datasets")
    if listed is not None:
        _PRESET_TYPES["datasets"].check(f"preset {preset['path']}: datasets", listed)
        return [(run, run.get("dataset") or name) for name in listed for run in preset["runs"]]
    default = preset.get("dataset", "dsprites")
    return [(run, run.get("dataset") or default) for run in preset["runs"]]


def spread(values: list[Any], points: int) -> list[Any]:
    """At most ``points`` of ``values``, evenly spaced, first and last included."""
    if len(values) <= points:
        return list(values)
    if points == 1:
        return [values[0]]
    step = (len(values) - 1) / (points - 1)
    return [values[round(i * step)] for i in range(points)]
