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
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from dbench.checks import SEED
from dbench.contracts import Observations
from dbench.engine.codes import checked_codes
from dbench.engine.environment import environment, resolve_device
from dbench.engine.identity import make_identity
from dbench.engine.record import build, portable_path
from dbench.engine.resolve import default_metrics, make_dataset
from dbench.engine.scoring import score_all
from dbench.engine.settings import check_metrics, parse_items, route
from dbench.engine.store import (
    RunRecord,
    check_run_id,
    ensure_writable,
    read_record,
    record_path,
    write_record,
)
from dbench.engine.user_code import import_encoder as import_encoder  # the CLI calls it here
from dbench.engine.user_code import user_code
from dbench.errors import UserError
from dbench.paths import results_root
from dbench.progress import interactive, quiet
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
    progress: bool | None = None,
    show_progress: bool | None = None,
) -> RunRecord:
    """Score ``encoder`` on ``dataset`` and write its run record; returns the record.

    ``settings`` takes the keys of ``--set`` (``dataset.key`` and ``METRIC.key``), as a dict
    such as ``{"higgins.num_train": 1000}`` or a list of ``"key=value"`` strings.
    ``progress``: bars on stderr (encoding the dataset, each metric); by default on in a
    terminal or a notebook, off elsewhere (``show_progress``: its older spelling, deprecated).
    """
    if show_progress is not None:
        warnings.warn(
            "evaluate(show_progress=...) is deprecated and will be removed in the next "
            "release; use progress=...",
            DeprecationWarning,
            stacklevel=2,
        )
        progress = show_progress if progress is None else progress
    device = resolve_device(device)
    encode, fingerprint = as_encode(encoder, device, batch_size)
    label = name or _default_name(encoder)
    with quiet(not (interactive() if progress is None else progress)):
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
        )


def score_representation(
    encode: Callable[[Observations], Any],
    *,
    label: str,
    fingerprint: str | Callable[[Any], str],
    dataset: str,
    metrics: list[str] | None,
    seed: int,
    settings: Mapping[str, Any] | list[str] | None,
    results_dir: str | Path | None,
    data_dir: str | None,
    device: str,
    batch_size: int,
    overwrite: bool = False,
    sim: Any = None,
) -> RunRecord:
    """The shared half of ``evaluate`` and ``--representations``: check, score, record.
    Progress follows :func:`dbench.progress.quiet` (the callers set it)."""
    started = time.perf_counter()
    check_run_id(label)
    SEED.check("seed", seed)
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
    if callable(fingerprint):
        fingerprint = fingerprint(sim)
    identity = make_identity(
        dataset=dataset,
        dataset_kwargs=scoped.dataset,
        dataset_info=dataset_info,
        model=label,
        params={},
        seed=seed,
        origin="evaluate",
        fingerprint=fingerprint,
    )
    root = results_root(results_dir)
    existing = record_path(root, identity.run_id)
    if existing.is_file() and not overwrite:
        return _score_missing(read_record(existing), root, sim, encode, specs, scoped.metrics,
                              seed, batch_size)  # fmt: skip
    ensure_writable(root)
    replaced = existing.parent / "replaced"
    if existing.is_file() and replaced.exists() and not replaced.is_dir():
        raise UserError(f"cannot keep the old record: {replaced} is not a folder")

    scored = score_all(
        sim,
        encode,
        specs,
        scoped.metrics,
        seed,
        batch_size=batch_size,
    )
    record = build(
        run_id=identity.run_id,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        origin="evaluate",
        config={
            "model": label,
            "dataset": dataset,
            "model_kwargs": {},
            "dataset_kwargs": scoped.dataset,
            "metrics": names,
            "metric_kwargs": scoped.metrics,
            "seed": seed,
            "device": device,
        },
        identity=identity.model_dump(),
        model={
            "name": label,
            "kwargs": {},
            "params": {},
            "origin": "evaluate",
            "fingerprint": fingerprint,
        },
        dataset={**dataset_info, "path": portable_path(dataset_info.get("path"), None)},
        budget={},
        scores=scored.scores,
        metrics=scored.meta,
        representation=scored.representation,
        timings={"metrics_s": scored.seconds, "total_s": time.perf_counter() - started},
        environment=environment(device, [DATASETS.entry(dataset)]),
    )
    if record["dataset"]["path"] is None:
        del record["dataset"]["path"]
    if existing.is_file():  # --overwrite: the old record is kept, as `run` keeps it
        replaced.mkdir(exist_ok=True)
        existing.replace(replaced / f"{identity.run_id}.{int(time.time())}.json")
    path = write_record(root, record)
    return {**record, "path": str(path)}


def _score_missing(record, root, sim, encode, specs, settings, seed, batch_size):
    """An existing run asked for metrics it lacks (or holds under another protocol): those are
    scored on the same encoder and merged into its record (replaced scores kept in history)."""
    from dbench.engine.rescore import merged, missing_metrics

    wanted = {name: specs[name] for name in missing_metrics(record, specs, settings)}
    if wanted:
        started = time.perf_counter()
        scored = score_all(sim, encode, wanted, settings, seed, batch_size=batch_size)
        record, _ = merged(record, wanted, scored, time.perf_counter() - started)
        write_record(root, record)
    return {**record, "path": str(record_path(root, record["run_id"])), "existing": True}


# -- encoders ------------------------------------------------------------------------------------


def _probe(encode: Callable[[Observations], Any], sim: Any) -> None:
    rng = np.random.default_rng(0)
    v = sim.sample_factors(2, rng)
    w = sim.sample_nuisance(2, rng)
    encode(Observations(v, w, _render=lambda: sim.sim(v, w)))


def _default_name(encoder: Any) -> str:
    named = encoder if inspect.isfunction(encoder) or inspect.isclass(encoder) else type(encoder)
    return safe_label(getattr(named, "__name__", "")) or "encoder"


def safe_label(text: str) -> str:
    """``text`` as a run-id label: other characters become ``-`` (``my codes`` ->
    ``my-codes``), no leading punctuation, no ``..``, at most 64 characters; may be empty."""
    import re

    text = re.sub(r"[^A-Za-z0-9_.=-]+", "-", str(text)).lower()
    text = re.sub(r"\.{2,}", ".", text)
    return text.lstrip("._=-")[:64].rstrip("._=-")


def as_encode(encoder: Any, device: str, batch_size: int) -> tuple[Callable, Any]:
    """``encode(obs) -> (n, D) array`` for the Representation, and a fingerprint of the encoder.

    The fingerprint is part of the run's identity, so two different encoders under one name
    never share a record: a module's weights and buffers; for any other callable or object
    with ``.encode``, a function of the dataset (``fingerprint(sim) -> str``) hashing its
    qualified name with its codes on a fixed probe batch (:func:`_by_codes`).
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
        name = f"{type(encoder).__module__}.{type(encoder).__qualname__}"
        fingerprint = None
    elif callable(encoder):
        fn = encoder
        name = f"{getattr(encoder, '__module__', '?')}.{getattr(encoder, '__qualname__', '?')}"
        fingerprint = None
    else:
        raise UserError(
            f"an encoder must be callable or have .encode; got {type(encoder).__name__}"
        )

    def encode(obs: Observations) -> np.ndarray:
        x = obs.images.to(device)
        where = f"the encoder failed on images of shape {tuple(x.shape)} (float32 in [0, 1])"
        with torch.no_grad():
            z = user_code(where, fn, x)
        return check_codes(z, len(x))

    if fingerprint is None:
        return encode, lambda sim: f"{name}:codes:{probe_hash(encode, sim)}"
    return encode, fingerprint


#: images in the probe batch that fingerprints an encoder by its codes
PROBE_IMAGES = 64


def probe_hash(encode: Callable[[Observations], np.ndarray], sim: Any) -> str:
    """A hash of ``encode``'s codes on a fixed batch of ``sim`` (the first
    :data:`PROBE_IMAGES` of a seeded draw). Torch's and numpy's global generators are seeded
    for the probe (and restored after), so an encoder that samples is fingerprinted by its
    function, not by its noise. Codes are rounded to 4 decimals of their largest magnitude,
    so thread counts and BLAS builds do not change an identity."""
    import torch

    rng = np.random.default_rng(0)
    v = sim.sample_factors(PROBE_IMAGES, rng)
    w = sim.sample_nuisance(PROBE_IMAGES, rng)
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()
    try:
        torch.manual_seed(0)
        np.random.seed(0)
        z = encode(Observations(v, w, _render=lambda: sim.sim(v, w)))
    finally:
        torch.random.set_rng_state(torch_state)
        np.random.set_state(np_state)
    scale = float(np.max(np.abs(z))) if z.size else 0.0
    scale = scale if scale > 0 else 1.0
    quantised = np.round(z / scale, 4) + 0.0  # + 0.0: -0.0 and 0.0 hash alike
    digest = hashlib.sha256(f"{scale:.4e}|{z.shape}".encode())
    digest.update(np.ascontiguousarray(quantised, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


def _weights_hash(module: Any) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def check_codes(z: Any, n: int) -> np.ndarray:
    """The encoder's output as a finite (n, D) float64 array within the stated limits
    (:func:`dbench.engine.codes.checked_codes`), or a one-line error saying what is wrong.
    Float64 output stays float64 (a cast to float32 would turn 1e308 into inf)."""
    if hasattr(z, "detach"):
        import torch

        z = z.detach().cpu()
        if z.is_complex():
            raise UserError("the encoder returned complex codes; return real numbers")
        z = (z if z.dtype == torch.float64 else z.float()).numpy()
    try:
        if np.iscomplexobj(z):
            raise UserError("the encoder returned complex codes; return real numbers")
        z = np.asarray(z)
    except (TypeError, ValueError):
        raise UserError(f"the encoder returned {type(z).__name__}, not an array of codes") from None
    if z.ndim != 2 or z.shape[0] != n:
        raise UserError(f"the encoder must return shape ({n}, D) for {n} images; got {z.shape}")
    return checked_codes(z, "the encoder's codes")


def evaluate_codes(
    path: str | Path,
    dataset: str = "dsprites",
    name: str | None = None,
    *,
    progress: bool = False,
    **kwargs: Any,
) -> RunRecord:
    """Score the codes saved in ``path`` (see :mod:`dbench.engine.codes`) on ``dataset``;
    ``kwargs`` as :func:`score_representation` takes them, ``progress``: bars on stderr."""
    from dbench.engine.codes import load_codes

    settings = kwargs.get("settings")
    flat = parse_items(settings) if isinstance(settings, list) else dict(settings or {})
    dataset_kwargs = route(flat, METRICS.names()).dataset
    DATASETS.check_kwargs(dataset, dataset_kwargs)
    base = make_dataset(dataset, dataset_kwargs, kwargs.get("data_dir"))
    encode, sim, fingerprint = load_codes(path, base)
    with quiet(not progress):
        return score_representation(
            encode,
            label=name or safe_label(Path(path).stem) or "codes",
            fingerprint=fingerprint,
            dataset=dataset,
            device="cpu",
            batch_size=4096,
            sim=sim,
            **kwargs,
        )
