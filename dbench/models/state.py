"""Learned state saved in a format that cannot run code: arrays in ``.npz``, the rest as JSON.

A results folder is input like any other file: loading a model's state must never execute
anything it contains (``pickle`` would). :func:`save_state` writes every learned attribute
(scikit-learn convention: names ending in ``_``) as numpy arrays and JSON scalars; an attribute
holding a scikit-learn estimator is stored as its own arrays and scalars, and rebuilt by the
model — the file never names a class to construct. Loading uses ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dbench.atomic import atomic_path
from dbench.errors import UserError

FORMAT = "dbench-state/1"
_META = "__meta__"
_SCALAR = "#scalar"  # suffix of a numpy scalar stored as a 0-d array
_SCALARS = (bool, int, float, str, type(None))


def _is_plain(value: Any) -> bool:
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _split(fields: dict[str, Any], prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Arrays into ``arrays`` (keyed ``prefix + name``); plain values returned for the JSON."""
    plain = {}
    for name, value in fields.items():
        if isinstance(value, np.generic):  # kept as a 0-d array: its dtype matters to results
            arrays[f"{prefix}{name}{_SCALAR}"] = np.asarray(value)
            continue
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise TypeError(f"{prefix}{name}: object arrays cannot be saved safely")
            arrays[prefix + name] = value
        elif _is_plain(value):
            plain[name] = value
        else:
            raise TypeError(f"{prefix}{name}: {type(value).__name__} cannot be saved safely")
    return plain


def canonical(estimator: Any) -> Any:
    """Make an estimator's arrays contiguous, as they are after :func:`load_state`.

    A freshly fitted scikit-learn estimator may hold strided views (PCA's ``components_``);
    BLAS rounds differently on those, so a model scored before saving would not score
    bit-identically after loading. Models call this right after fitting.
    """
    for name, value in vars(estimator).items():
        if isinstance(value, np.ndarray) and not (
            value.flags["C_CONTIGUOUS"] or value.flags["F_CONTIGUOUS"]
        ):
            setattr(estimator, name, np.ascontiguousarray(value))
    return estimator


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write learned state; estimators (objects with ``get_params``) are stored field by field."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"format": FORMAT, "plain": {}, "estimators": {}}
    plain_fields = {}
    for name, value in state.items():
        if hasattr(value, "get_params") and hasattr(value, "__dict__"):
            meta["estimators"][name] = _split(vars(value), f"{name}/", arrays)
        else:
            plain_fields[name] = value
    meta["plain"] = _split(plain_fields, "", arrays)
    arrays[_META] = np.array(json.dumps(meta))
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    except OSError as exc:
        raise UserError(f"cannot write model state {path}: {exc}") from None


def load_state(path: Path, estimators: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """The learned state in ``path``; ``estimators`` build the empty estimator of each name."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(
            f"cannot load model state from {path}: not a {FORMAT} file ({exc}); states saved "
            "with pickle by dbench 0.1 are no longer loaded (a results folder must not run "
            "code): train the run again"
        ) from None
    try:
        meta = json.loads(str(arrays.pop(_META)))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        state = dict(meta["plain"])
        for name, fields in meta["estimators"].items():
            if name not in estimators:
                raise ValueError(f"unexpected estimator {name!r}")
            est = estimators[name]()
            vars(est).update(fields)
            state[name] = est
        for key, value in arrays.items():
            if key.endswith(_SCALAR):
                key, value = key[: -len(_SCALAR)], value[()]
            owner, slash, field = key.partition("/")
            if slash:
                if owner not in meta["estimators"]:
                    raise ValueError(f"array {key!r} of no estimator")
                setattr(state[owner], field, value)
            else:
                state[key] = value
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot load model state from {path}: malformed ({exc})") from None
    return state


def save_torch(path: Path, state: dict[str, Any], what: str = "model state") -> None:
    """``torch.save`` through the one atomic writer: a full disk (which torch reports as a
    RuntimeError) is one line and leaves the previous file intact."""
    import torch

    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except (OSError, RuntimeError) as exc:
        raise UserError(f"cannot write {what} {path}: {exc}") from None


def load_torch(path: Path, fmt: str | None, prefix: str) -> dict[str, Any]:
    """A dict saved by :func:`save_torch`, loaded with ``weights_only=True`` (no code runs);
    ``fmt``: the ``format`` it must declare. Any problem is one line starting ``prefix``."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # missing, truncated or not ours: one clear line
        raise UserError(f"{prefix} {path}: {exc}") from None
    if fmt is not None and (not isinstance(state, dict) or state.get("format") != fmt):
        raise UserError(f"{prefix} {path}: not a {fmt} file")
    return state


def state_dicts(owners: dict[str, Any]) -> dict[str, Any]:
    """The ``state_dict()`` of each named torch module or optimiser."""
    return {name: owner.state_dict() for name, owner in owners.items()}


def load_state_dicts(owners: dict[str, Any], saved: dict[str, Any]) -> None:
    """Load each saved ``state_dict`` into the module or optimiser of its name; a missing name
    is a KeyError and a wrong shape torch's RuntimeError (callers make them one line)."""
    for name, owner in owners.items():
        owner.load_state_dict(saved[name])
