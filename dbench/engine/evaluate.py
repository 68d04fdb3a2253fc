"""Score a representation that already exists: an outside encoder, or codes saved to a file.

``dbench.evaluate(encoder, dataset=...)`` and ``dbench evaluate --encoder MODULE:ATTR`` /
``--representations FILE.npz`` score through the same loop as ``run_one``
(:func:`dbench.engine.scoring.score_all`: one shared representation, per-metric random
streams) and write the same kind of record — origin ``evaluate``, no training section — so
the run appears in ``dbench leaderboard`` like any other.

An encoder is anything that maps an ``(n, C, H, W)`` float tensor in [0, 1] to ``(n, D)``:
a ``torch.nn.Module`` (put in eval mode, run without gradients on the chosen device), an
object with ``.encode``, or a plain function.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from dbench.contracts import Observations
from dbench.engine.environment import environment, resolve_device
from dbench.engine.resolve import default_metrics, identity_hash, make_dataset
from dbench.engine.scoring import score_all
from dbench.engine.settings import check_metrics, parse_items, route
from dbench.engine.store import (
    SCHEMA_VERSION,
    RunRecord,
    check_run_id,
    ensure_writable,
    read_record,
    record_path,
    write_record,
)
from dbench.errors import UserError
from dbench.paths import results_root
from dbench.progress import quiet
from dbench.registry import DATASETS, METRICS


def evaluate(
    encoder: Any,
    dataset: str = "dsprites",
    metrics: list[str] | None = None,
    seed: int = 0,
    settings: Mapping[str, Any] | list[str] | None = None,
    name: str | None = None,
    results_dir: str | Path | None = None,
    *,
    data_dir: str | None = None,
    device: str = "auto",
    batch_size: int = 256,
    overwrite: bool = False,
    show_progress: bool = False,
) -> RunRecord:
    """Score ``encoder`` on ``dataset`` and write its run record; returns the record.

    ``settings`` takes the keys of ``--set`` (``dataset.key`` and ``METRIC.key``), as a dict
    such as ``{"higgins.num_train": 1000}`` or a list of ``"key=value"`` strings.
    """
    device = resolve_device(device)
    encode, fingerprint = as_encode(encoder, device, batch_size)
    label = name or _default_name(encoder)
    with quiet(not show_progress):
        return score_representation(
            encode,
            label=label,
            fingerprint=fingerprint,
            dataset=dataset,
            metrics=metrics,
            seed=seed,
            settings=settings,
            results_dir=results_dir,
            data_dir=data_dir,
            device=device,
            batch_size=batch_size,
            overwrite=overwrite,
            show_progress=show_progress,
        )


def score_representation(
    encode: Callable[[Observations], Any],
    *,
    label: str,
    fingerprint: str,
    dataset: str,
    metrics: list[str] | None,
    seed: int,
    settings: Mapping[str, Any] | list[str] | None,
    results_dir: str | Path | None,
    data_dir: str | None,
    device: str,
    batch_size: int,
    overwrite: bool = False,
    show_progress: bool = False,
    sim: Any = None,
) -> RunRecord:
    """The shared half of ``evaluate`` and ``--representations``: check, score, record."""
    started = time.perf_counter()
    check_run_id(label)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed must be a non-negative integer; got {seed!r}")
    flat = parse_items(settings) if isinstance(settings, list) else dict(settings or {})
    scoped = route(flat, METRICS.names())
    if scoped.model or scoped.budget:
        raise UserError("evaluate takes dataset.key and METRIC.key settings only")
    names = list(metrics) if metrics is not None else default_metrics()
    specs = check_metrics(names, scoped.metrics)
    DATASETS.check_kwargs(dataset, scoped.dataset)
    if sim is None:
        sim = make_dataset(dataset, scoped.dataset, data_dir)
    for metric, spec in specs.items():
        spec.check(scoped.metrics.get(metric, {}), sim)
    _probe(encode, sim)  # a broken encoder fails on two images, before any scoring

    dataset_info = sim.describe()
    identity = {
        "model": label,
        "origin": "evaluate",
        "fingerprint": fingerprint,
        "dataset": dataset,
        "dataset_kwargs": scoped.dataset,
        "source": str(dataset_info.get("source")),
        "metrics": names,
        "metric_kwargs": scoped.metrics,
        "seed": seed,
    }
    run_id = f"{dataset}-{label}-{identity_hash(identity)}-s{seed}"
    root = results_root(results_dir)
    existing = record_path(root, run_id)
    if existing.is_file() and not overwrite:
        return {**read_record(existing), "path": str(existing), "existing": True}
    ensure_writable(root)

    scored = score_all(
        sim,
        encode,
        specs,
        scoped.metrics,
        seed,
        show_progress=show_progress,
        batch_size=batch_size,
    )
    record: RunRecord = {
        "schema": SCHEMA_VERSION,
        "run_id": run_id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "origin": "evaluate",
        "config": {
            "model": label,
            "dataset": dataset,
            "model_kwargs": {},
            "dataset_kwargs": scoped.dataset,
            "metrics": names,
            "metric_kwargs": scoped.metrics,
            "seed": seed,
            "device": device,
        },
        "identity": identity,
        "model": {
            "name": label,
            "kwargs": {},
            "params": {},
            "origin": "evaluate",
            "fingerprint": fingerprint,
        },
        "dataset": dataset_info,
        "budget": {},
        "scores": scored.scores,
        "metrics": scored.meta,
        "representation": scored.representation,
        "timings": {"metrics_s": scored.seconds, "total_s": time.perf_counter() - started},
        "environment": environment(device, [DATASETS.entry(dataset)]),
    }
    path = write_record(root, record)
    return {**record, "path": str(path)}


# -- encoders ------------------------------------------------------------------------------------


def _probe(encode: Callable[[Observations], Any], sim: Any) -> None:
    rng = np.random.default_rng(0)
    v = sim.sample_factors(2, rng)
    w = sim.sample_nuisance(2, rng)
    encode(Observations(v, w, _render=lambda: sim.sim(v, w)))


def _default_name(encoder: Any) -> str:
    import re

    named = encoder if inspect.isfunction(encoder) or inspect.isclass(encoder) else type(encoder)
    text = re.sub(r"[^A-Za-z0-9_.=-]+", "", getattr(named, "__name__", "")).lower()
    return text.lstrip("._=-") or "encoder"


def as_encode(encoder: Any, device: str, batch_size: int) -> tuple[Callable, str]:
    """``encode(obs) -> (n, D) array`` for the Representation, and a fingerprint of the encoder.

    The fingerprint (a hash of a module's weights, or the function's qualified name) is part
    of the run's identity, so two different encoders under one name never share a record.
    """
    import torch

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch_size must be a positive integer; got {batch_size!r}")
    if isinstance(encoder, torch.nn.Module):
        module = encoder.to(device).eval()
        fn: Callable[[Any], Any] = module
        fingerprint = _weights_hash(module)
    elif callable(getattr(encoder, "encode", None)):
        fn = encoder.encode
        fingerprint = f"{type(encoder).__module__}.{type(encoder).__qualname__}"
    elif callable(encoder):
        fn = encoder
        fingerprint = (
            f"{getattr(encoder, '__module__', '?')}.{getattr(encoder, '__qualname__', '?')}"
        )
    else:
        raise UserError(
            f"an encoder must be callable or have .encode; got {type(encoder).__name__}"
        )

    def encode(obs: Observations) -> np.ndarray:
        x = obs.images.to(device)
        try:
            with torch.no_grad():
                z = fn(x)
        except Exception as exc:  # the encoder is the user's code: say where it broke
            raise UserError(
                f"the encoder failed on images of shape {tuple(x.shape)} "
                f"(float32 in [0, 1]): {type(exc).__name__}: {str(exc).splitlines()[0]}"
            ) from None
        return check_codes(z, len(x))

    return encode, fingerprint


def _weights_hash(module: Any) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def check_codes(z: Any, n: int) -> np.ndarray:
    """The encoder's output as a finite (n, D) array, or a one-line error saying what is wrong."""
    if hasattr(z, "detach"):
        z = z.detach().float().cpu().numpy()
    try:
        z = np.asarray(z, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"the encoder returned {type(z).__name__}, not an array of codes") from None
    if z.ndim != 2 or z.shape[0] != n:
        raise UserError(f"the encoder must return shape ({n}, D) for {n} images; got {z.shape}")
    if not np.isfinite(z).all():
        raise UserError("the encoder returned NaN or infinite codes")
    return z


def evaluate_codes(
    path: str | Path, dataset: str = "dsprites", name: str | None = None, **kwargs: Any
) -> RunRecord:
    """Score the codes saved in ``path`` (see :mod:`dbench.engine.codes`) on ``dataset``."""
    from dbench.engine.codes import load_codes

    settings = kwargs.get("settings")
    flat = parse_items(settings) if isinstance(settings, list) else dict(settings or {})
    dataset_kwargs = route(flat, METRICS.names()).dataset
    DATASETS.check_kwargs(dataset, dataset_kwargs)
    base = make_dataset(dataset, dataset_kwargs, kwargs.get("data_dir"))
    encode, sim, fingerprint = load_codes(path, base)
    with quiet(not kwargs.get("show_progress", False)):
        return score_representation(
            encode,
            label=name or Path(path).stem,
            fingerprint=fingerprint,
            dataset=dataset,
            device="cpu",
            batch_size=4096,
            sim=sim,
            **kwargs,
        )


def import_encoder(target: str) -> Any:
    """``MODULE:ATTR`` -> the encoder (a zero-argument factory is called)."""
    import importlib
    import sys

    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise UserError(f"--encoder expects MODULE:ATTR; got {target!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")  # the current folder, as `python -m` would
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"cannot import {module_name!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    import torch

    if isinstance(obj, torch.nn.Module) or callable(getattr(obj, "encode", None)):
        return obj
    if callable(obj):
        try:
            params = inspect.signature(obj).parameters.values()
        except (TypeError, ValueError):
            return obj
        required = [
            p
            for p in params
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if not required or inspect.isclass(obj):
            return obj()  # a factory (or a class): build the encoder
        return obj
    raise UserError(f"{target} is neither an encoder nor a factory of one")
