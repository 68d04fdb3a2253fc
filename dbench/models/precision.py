"""Where and in what precision a run trains: ``--device`` and ``--precision``, in one place.

``--device auto`` is CUDA when torch sees a GPU (in a sweep trial: when Ray gave the trial
one), else the CPU; any other name must be usable here (:func:`resolve_device`).

``--precision``: ``fp32`` and ``bf16`` force one. ``auto`` (the default) trains in bfloat16
autocast where that is faster on this machine, and in float32 elsewhere:

- CPU: decided by measurement, not by CPU name. Whether bf16 pays depends on more than the
  instruction set: AMX tiles (Intel Xeon 4th gen and later) and ``avx512_bf16`` (e.g. AMD EPYC
  Zen 4) run bf16 matmuls in hardware, plain AVX-512 converts in software (slower than fp32),
  and small nets are dominated by elementwise work that bf16 does not speed up. So ``auto``
  times a few training steps of the model's own architecture (its ``setup`` and
  ``train_step``, forward, backward and Adam step, on a batch of the dataset's observation
  shape) in fp32 and in bf16 autocast, alternating, and picks bf16 only when the median
  speed-up is at least :data:`BF16_MARGIN`. The measured ratio is cached per CPU model, torch
  version, model and architecture, observation shape and thread count in
  ``precision.json`` under :func:`cache_dir`, so each machine measures each architecture once
  (about a second on a quiet machine); a CPU without bf16 support in oneDNN is not measured
  (fp32). The ratio depends on the thread count and on how busy the cores are (on a 2-core
  AMD EPYC with ``avx512_bf16``, at load 12: 1.55x on one thread, 0.6-0.9x on two), so the
  cache entry keeps the load it was measured under; delete the file to measure again.
- CUDA: bf16 where ``torch.cuda.is_bf16_supported()`` (Ampere and later); older GPUs keep the
  fp16-with-loss-scaling path under ``auto``.

One consequence: the same command may train in bf16 on one machine and in fp32 on another,
and those are different configurations (see below). The decision and the measured ratio are
returned as a :class:`Choice` for the run's record.

Autocast computes matmuls and convolutions in the low precision but keeps the weights, the
optimiser state and the summed losses in float32 (dbench's objectives cast to float32
before summing), so it changes the arithmetic, not the model. A run's resolved precision is
in its record (``training.precision``) and in its identity whenever it is not float32, so
runs of different precisions never average together; fp32 run ids are the ones dbench gave
before precision was an option.

torch is imported inside the functions that use it: a :class:`~dbench.engine.config.RunConfig`
checks ``--precision`` (:func:`check_choice`) without loading torch.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbench.errors import UserError

if TYPE_CHECKING:
    import torch

#: what users may ask for
CHOICES = ("auto", "fp32", "bf16")
#: what a run records: torch dtype names
FLOAT32, BFLOAT16, FLOAT16 = "float32", "bfloat16", "float16"
_ASKED = {"fp32": FLOAT32, "bf16": BFLOAT16, "float32": FLOAT32, "bfloat16": BFLOAT16}

#: ``auto`` picks bf16 on a CPU only when its measured training steps are this much faster
BF16_MARGIN = 1.15
#: the measurement: batch size, alternating rounds (one fp32 and one bf16 step each, after
#: one warm-up step of each) and a time budget that cuts slow architectures to 3 rounds
PROBE_BATCH, PROBE_ROUNDS, PROBE_SECONDS = 64, 5, 1.5
#: environment variable naming the cache folder (tests point it at a temporary folder)
CACHE_ENV = "DBENCH_CACHE"
CACHE_FILE = "precision.json"
_CACHE_FORMAT = "dbench-precision-cache/1"


def check_choice(precision: str) -> str:
    """``precision`` if it is one of :data:`CHOICES` (or a dtype name), else one clear line."""
    if precision == "auto" or precision in _ASKED:
        return precision
    raise UserError(f"precision must be one of {', '.join(CHOICES)}; got {precision!r}")


# -- the device ------------------------------------------------------------------------------
def auto_device(has_gpu: bool | None = None) -> str:
    """What ``--device auto`` means: ``cuda`` when there is a GPU, else ``cpu``. ``has_gpu``:
    whether this process was given one (a sweep trial: only what Ray gave it, never any GPU
    of the machine); None asks torch."""
    if has_gpu is None:
        import torch

        has_gpu = torch.cuda.is_available()
    return "cuda" if has_gpu else "cpu"


def resolve_device(device: str) -> str:
    """``auto`` -> :func:`auto_device`; any other name must be usable here (one clear line)."""
    if device == "auto":
        return auto_device()
    import torch

    try:
        torch.empty(0, device=device)
    except (RuntimeError, ValueError, AssertionError) as exc:
        # torch's first sentence: some backends answer with a page of dispatcher tables
        why = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
        raise UserError(f"device {device!r} is not usable here: {why}") from None
    return device


# -- the precision ---------------------------------------------------------------------------
def cpu_has_bf16_units() -> bool:
    """True where oneDNN runs bf16 matmuls/convolutions on AMX tiles (not emulated)."""
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:  # pragma: no cover - builds without the probe's kernels
        return False


def cpu_supports_bf16() -> bool:
    """True where oneDNN has bf16 kernels on this CPU (AVX-512 at least, possibly emulated):
    only there is a measurement worth its second."""
    import torch

    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return cpu_has_bf16_units() or (bool(probe()) if probe is not None else False)
    except RuntimeError:  # pragma: no cover - builds without oneDNN
        return False


@dataclass(frozen=True)
class Choice:
    """What was asked, what a run trains in, and (for ``auto`` on a CPU) why."""

    asked: str
    chosen: str
    measured_speedup: float | None = None  # fp32 step time / bf16 step time
    cached: bool | None = None  # the ratio came from the cache file (not measured now)

    def as_dict(self) -> dict[str, Any]:
        """The record's ``precision_choice``."""
        out: dict[str, Any] = {"asked": self.asked, "chosen": self.chosen}
        if self.measured_speedup is not None:
            out.update(
                measured_speedup=round(self.measured_speedup, 3),
                margin=BF16_MARGIN,
                cached=self.cached,
            )
        return out


def choose_precision(precision: str, device: str, model: Any = None, sim: Any = None) -> Choice:
    """The precision a run of ``model`` on ``sim`` trains in on ``device``, and why.

    ``auto`` on a CPU measures ``model``'s architecture (cached in a file, and decided once
    per process); without a model and a simulator there is nothing to time, and only AMX
    counts as bf16 hardware (the rule before measurement).
    """
    import torch

    check_choice(precision)
    kind = torch.device(device).type
    if precision != "auto":
        wanted = _ASKED[precision]
        if wanted == BFLOAT16 and kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError(f"precision bf16 is not supported by this GPU ({device}); use fp32")
        return Choice(precision, wanted)
    if kind == "cuda":
        return Choice(precision, BFLOAT16 if torch.cuda.is_bf16_supported() else FLOAT16)
    if kind != "cpu" or not cpu_supports_bf16():
        return Choice(precision, FLOAT32)
    if model is None or sim is None or not callable(getattr(model, "train_step", None)):
        return Choice(precision, BFLOAT16 if cpu_has_bf16_units() else FLOAT32)
    key = cache_key(model, sim)
    if key not in _DECIDED:  # once per process: the run id, the loop and the record agree
        speedup, cached = measured_speedup(model, sim)
        if speedup is None:  # could not be measured (nor cached): the safe side, not kept
            return Choice(precision, FLOAT32)
        chosen = BFLOAT16 if speedup >= BF16_MARGIN else FLOAT32
        _DECIDED[key] = Choice(precision, chosen, speedup, cached)
    return _DECIDED[key]


#: decisions of ``auto`` on the CPU in this process, by :func:`cache_key`
_DECIDED: dict[str, Choice] = {}


def forget() -> None:
    """Forget this process's decisions (the cache file stays): the next ``auto`` reads it."""
    _DECIDED.clear()


def resolve_precision(precision: str, device: str, model: Any = None, sim: Any = None) -> str:
    """The dtype name a run on ``device`` trains in: ``float32``, ``bfloat16`` or ``float16``."""
    return choose_precision(precision, device, model, sim).chosen


# -- the measurement and its cache -----------------------------------------------------------
def cache_dir() -> Path:
    """``$DBENCH_CACHE``, else ``$XDG_CACHE_HOME/dbench``, else ``~/.cache/dbench``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dbench"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine() or "unknown"


def cache_key(model: Any, sim: Any) -> str:
    """What the measured ratio depends on: CPU, torch, model and architecture, observation
    shape, threads (not the hyperparameters that leave the nets' shapes alone)."""
    import torch

    cls = type(model)
    parts = [
        cpu_name(),
        torch.__version__,
        f"{cls.__module__}.{cls.__qualname__}",
        str(getattr(model, "arch", "")),
        "x".join(str(int(s)) for s in getattr(sim, "observation_shape", ())),
        torch.get_num_threads(),
    ]
    return json.dumps(parts)


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """The valid entries of the cache file; anything else (missing, corrupt, another format,
    a malformed entry) is ignored, never trusted."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
        return {}
    entries = data.get("entries")
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(k, str) and _valid_ratio(v)}


def _valid_ratio(entry: Any) -> bool:
    value = entry.get("speedup") if isinstance(entry, dict) else None
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0.01 < value < 100
    )


def machine_load() -> tuple[float | None, int]:
    """(1-minute load average or None where the OS has none, CPU count)."""
    try:
        load = round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        load = None
    return load, os.cpu_count() or 1


def _oversubscribed(load: Any, cpus: Any) -> bool:
    """More runnable work than CPUs: the two precisions' step times are then timed on shared
    cores, and their ratio says more about the other jobs than about bf16 (measured here: a
    beta-VAE at 0.66x under load 10.7 on 2 cores, 1.5x-1.8x on quiet ones)."""
    return isinstance(load, (int, float)) and isinstance(cpus, int) and load > cpus


def measured_speedup(model: Any, sim: Any) -> tuple[float | None, bool]:
    """(fp32 time / bf16 time for ``model``'s training steps, whether it came from the cache);
    measured (:func:`measure_speedup`) and cached on first use. A ratio timed on an
    oversubscribed machine decides for this process only: it is not cached, and a cached one
    timed that way is measured again."""
    path = cache_dir() / CACHE_FILE
    key = cache_key(model, sim)
    entries = _read_cache(path)
    if key in entries and not _oversubscribed(
        entries[key].get("load_1min"), entries[key].get("cpus")
    ):
        return float(entries[key]["speedup"]), True
    try:
        speedup = measure_speedup(model, sim)
    except Exception:  # noqa: BLE001 - a model the probe cannot drive: no bf16, no cache
        return None, False
    load, cpus = machine_load()
    if _oversubscribed(load, cpus):
        return speedup, False
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    entry = {"speedup": speedup, "measured": when, "cpus": cpus, "load_1min": load}
    entries = {**_read_cache(path), key: entry}
    from dbench.atomic import write_json

    with contextlib.suppress(OSError):  # a read-only home: decide now, measure again later
        write_json(path, {"format": _CACHE_FORMAT, "entries": entries})
    return speedup, False


class _ProbeStep:
    """The members of the training loop's ``Step`` a model's ``train_step`` uses, on one
    fixed batch (the data's values do not change the step's time)."""

    def __init__(self, x: torch.Tensor, gen: torch.Generator, precision: str):
        self.index, self.batch_size, self.gen, self.table = 0, len(x), gen, None
        self._x, self._precision = x, precision

    def batch(self) -> torch.Tensor:
        return self._x

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast("cpu", self._precision)

    def optimise(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def _fresh(model: Any) -> Any:
    """An unfitted copy of ``model`` (never compiled: compiling would be most of a short
    measurement); the caller's model is left as it was."""
    params = model.get_params() if callable(getattr(model, "get_params", None)) else None
    if params is None:
        return copy.deepcopy(model)
    if params.get("compile") is True:
        params["compile"] = False
    return type(model)(**params)


def measure_speedup(model: Any, sim: Any) -> float:
    """fp32 step time / bf16 step time of ``model``'s own training step on the CPU: one
    warm-up step of each, then up to :data:`PROBE_ROUNDS` rounds of one fp32 and one bf16
    step (alternating, so background load hits both alike), the median of the rounds' ratios.
    The global RNG is left as it was."""
    import torch

    shape = tuple(int(s) for s in sim.observation_shape)
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(0)
        probe = _fresh(model)
        probe.setup(sim, torch.device("cpu"), gen)
        fmt = torch.channels_last if len(shape) == 3 else torch.contiguous_format
        x = torch.rand((PROBE_BATCH, *shape), generator=gen).contiguous(memory_format=fmt)
        steps = {p: _ProbeStep(x, gen, p) for p in (FLOAT32, BFLOAT16)}

        def seconds(precision: str) -> float:
            start = time.perf_counter()
            probe.train_step(steps[precision])
            return time.perf_counter() - start

        warm = seconds(FLOAT32) + seconds(BFLOAT16)  # oneDNN builds its kernels here
        rounds = max(3, min(PROBE_ROUNDS, int(PROBE_SECONDS / max(warm, 1e-6))))
        ratios = [seconds(FLOAT32) / seconds(BFLOAT16) for _ in range(rounds)]
    return float(statistics.median(ratios))


def dtype(precision: str | None) -> torch.dtype | None:
    """The autocast dtype of a resolved precision; None for float32 (no autocast)."""
    import torch

    return {BFLOAT16: torch.bfloat16, FLOAT16: torch.float16}.get(precision or FLOAT32)


def autocast(
    device: str | torch.device, precision: str | None
) -> contextlib.AbstractContextManager:
    """Autocast to ``precision`` on ``device``; a no-op for float32 (or unknown) precision.

    Encoders use it at inference with the precision the model trained in, and return float32.
    """
    import torch

    low = dtype(precision)
    if low is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=low)


def grad_scaler(device: str | torch.device, precision: str | None) -> torch.amp.GradScaler:
    """The training loop's gradient scaler: enabled only for float16 (bfloat16 has float32's
    exponent range, so its gradients need no loss scaling); a disabled one passes through."""
    import torch

    kind = torch.device(device).type
    return torch.amp.GradScaler(kind, enabled=dtype(precision) == torch.float16)
