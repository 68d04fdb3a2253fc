"""Numeric precision of training and encoding: ``--precision fp32|bf16|auto``.

``auto`` (the default) trains in bfloat16 autocast where the hardware has bf16 matrix units
and in float32 elsewhere:

- CPU: bf16 only where oneDNN can use AMX tiles (``torch.cpu._is_amx_tile_supported()``,
  Intel Xeon 4th gen and later). AVX-512 alone also "supports" bf16, but by converting to
  fp32 in software, which is slower than fp32; so ``auto`` keeps fp32 there. On the project's
  2-core AMX machine a plain Burgess conv VAE loop ran 2.1-2.5x faster with bf16 autocast and
  channels-last modules and inputs (``benchmarks/train_throughput.py`` measures it).
- CUDA: bf16 where ``torch.cuda.is_bf16_supported()`` (Ampere and later); older GPUs keep the
  fp16-with-loss-scaling path under ``auto``.

Autocast computes matmuls and convolutions in the low precision but keeps the weights, the
optimiser state and the summed losses in float32 (dbench's objectives cast to float32
before summing), so it changes the arithmetic, not the model. A run's resolved precision is
in its record (``training.precision``) and in its identity whenever it is not float32, so
runs of different precisions never average together; fp32 run ids are the ones dbench gave
before precision was an option.
"""

from __future__ import annotations

import contextlib

import torch

from dbench.errors import UserError

#: what users may ask for
CHOICES = ("auto", "fp32", "bf16")
#: what a run records: torch dtype names
FLOAT32, BFLOAT16, FLOAT16 = "float32", "bfloat16", "float16"
_ASKED = {"fp32": FLOAT32, "bf16": BFLOAT16, "float32": FLOAT32, "bfloat16": BFLOAT16}


def check_choice(precision: str) -> str:
    """``precision`` if it is one of :data:`CHOICES` (or a dtype name), else one clear line."""
    if precision == "auto" or precision in _ASKED:
        return precision
    raise UserError(f"precision must be one of {', '.join(CHOICES)}; got {precision!r}")


def cpu_has_bf16_units() -> bool:
    """True where oneDNN runs bf16 matmuls/convolutions on AMX tiles (not emulated)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:  # pragma: no cover - builds without the probe's kernels
        return False


def resolve_precision(precision: str, device: str) -> str:
    """The dtype name a run on ``device`` trains in: ``float32``, ``bfloat16`` or ``float16``."""
    check_choice(precision)
    kind = torch.device(device).type
    if precision != "auto":
        wanted = _ASKED[precision]
        if wanted == BFLOAT16 and kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError(f"precision bf16 is not supported by this GPU ({device}); use fp32")
        return wanted
    if kind == "cuda":
        return BFLOAT16 if torch.cuda.is_bf16_supported() else FLOAT16
    if kind == "cpu" and cpu_has_bf16_units():
        return BFLOAT16
    return FLOAT32


def dtype(precision: str | None) -> torch.dtype | None:
    """The autocast dtype of a resolved precision; None for float32 (no autocast)."""
    return {BFLOAT16: torch.bfloat16, FLOAT16: torch.float16}.get(precision or FLOAT32)


def autocast(
    device: str | torch.device, precision: str | None
) -> contextlib.AbstractContextManager:
    """Autocast to ``precision`` on ``device``; a no-op for float32 (or unknown) precision.

    Encoders use it at inference with the precision the model trained in, and return float32.
    """
    low = dtype(precision)
    if low is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=low)
