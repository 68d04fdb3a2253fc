"""The one training loop every learned model of dbench uses.

What it owns: the device; batches gathered on the device
from the simulator's :class:`~dbench.datasets.base.CompactTable` with indices drawn from a
seeded ``torch.Generator`` (no DataLoader, no per-batch Python collation); the precision
(bf16 autocast where the hardware has bf16 matrix units, :mod:`dbench.models.precision`),
channels-last inputs and optionally ``torch.compile``; the progress bar and ``ctx.report``;
atomic checkpoints (weights, optimisers, every RNG state, step) and exact resume; divergence
detection; and the ``fit_info_`` summary.

A model plugs in through :class:`Trainable`: it builds its nets and optimisers in ``setup``
and performs one optimisation step in ``train_step`` using the :class:`Step` it is handed.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from dbench.contracts import Budget, CompactStorable, FitContext, Simulator
from dbench.errors import UserError
from dbench.models.curves import CURVE_FILE, CurveLog
from dbench.models.precision import choose_precision
from dbench.models.precision import dtype as precision_dtype
from dbench.models.state import load_torch, save_torch
from dbench.progress import progress_bar

CHECKPOINT = "checkpoint.pt"
_FORMAT = "dbench-train/1"


class TrainingDiverged(UserError):
    """The loss or the weights became NaN/inf. Not necessarily the user's mistake, but it ends
    the run with one clear line (the CLI prints UserErrors that way); the last checkpoint, which
    is only ever written from finite states, stays on disk."""


@dataclass
class LoopSettings:
    """How often the loop syncs, reports and checkpoints. Not hyperparameters: they never change
    the learned weights, so they are not ``__init__`` kwargs and not part of a run's identity."""

    log_every: int = 25  # progress bar refresh and divergence check (one device sync)
    report_every: int = 100  # ctx.report(step=..., loss=..., kl=...)
    checkpoint_every: int = 1000
    eval_sample: int = 2048  # fixed sample for the final reconstruction loss and KL per dim


@runtime_checkable
class Trainable(Protocol):
    """A model trained by :func:`fit` (it honours the run's precision)."""

    loop: LoopSettings

    def setup(self, sim: Simulator, device: torch.device, gen: torch.Generator) -> None:
        """Build nets (weights drawn from ``gen``, a CPU generator) and optimisers."""

    def state_modules(self) -> dict[str, torch.nn.Module]: ...

    def state_optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def train_step(self, step: Step) -> dict[str, torch.Tensor]:
        """One update; returns detached scalars including ``loss``, ``recon`` and ``kl``."""

    def evaluate(self, x: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """``recon`` (M,) and ``kl`` (M, D) for a batch, in eval mode, no gradients."""


class BatchSource:
    """Training images on the device.

    With a compact table: indices from ``gen`` on the device, ``index_select``, decode in place.
    Without one (datasets with nuisance factors): ``sim.sim(sample_factors, sample_nuisance)``
    per batch, drawn from the checkpointed numpy generator ``np_rng``.
    """

    def __init__(
        self,
        sim: Simulator,
        device: torch.device,
        gen: torch.Generator,
        np_rng: np.random.Generator,
        channels_last: bool,
    ):
        self.sim, self.device, self.gen, self.np_rng = sim, device, gen, np_rng
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        table = sim.compact_table(str(device)) if isinstance(sim, CompactStorable) else None
        self.table = table
        if table is not None and table.data.device != device:
            self.table = type(table)(table.data.to(device), table.decode)

    def __call__(self, n: int) -> torch.Tensor:
        if self.table is not None:
            data = self.table.data
            idx = torch.randint(len(data), (n,), generator=self.gen, device=self.device)
            x = self.table.decode(data.index_select(0, idx))
        else:
            v = self.sim.sample_factors(n, self.np_rng)
            w = self.sim.sample_nuisance(n, self.np_rng)
            x = self.sim.sim(v, w).to(self.device, non_blocking=True)
        return x.float().contiguous(memory_format=self.memory_format)


class Step:
    """What a model's ``train_step`` sees: the step index, batches, the RNG, autocast and an
    ``optimise`` that handles gradient scaling."""

    def __init__(self, source: BatchSource, batch_size: int, gen: torch.Generator, amp: Any):
        self.index = 0  # steps completed before this one
        self.batch_size = batch_size
        self.gen = gen
        self._source = source
        self._amp_dtype, self._scaler = amp
        self._device_type = source.device.type

    def batch(self) -> torch.Tensor:
        return self._source(self.batch_size)

    @property
    def table(self) -> Any:
        """The loop's compact table on the training device (None for datasets drawn with
        ``sim``): a model that draws its own batches gathers from it by grid index."""
        return self._source.table

    def autocast(self) -> contextlib.AbstractContextManager:
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self._device_type, dtype=self._amp_dtype)

    def optimise(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        self._scaler.scale(loss).backward()
        self._scaler.step(optimizer)


def _amp(device: torch.device, precision: str) -> tuple[torch.dtype | None, torch.amp.GradScaler]:
    """The autocast dtype (None: fp32) and a gradient scaler, enabled only for fp16 (bf16 has
    fp32's exponent range, so its gradients need no loss scaling)."""
    low = precision_dtype(precision)
    return low, torch.amp.GradScaler(device.type, enabled=low == torch.float16)


def _seeds(rng: np.random.Generator) -> dict[str, int]:
    names = ("init", "train", "eval", "numpy")
    seeds = rng.integers(0, 2**63 - 1, size=len(names))
    return {n: int(s) for n, s in zip(names, seeds, strict=True)}


def _write_atomic(obj: Any, path: Path) -> None:
    """Through the one atomic writer: a full disk leaves the previous checkpoint intact."""
    save_torch(path, obj, "checkpoint")


def _finite_weights(model: Trainable) -> bool:
    return all(
        bool(torch.isfinite(p).all())
        for m in model.state_modules().values()
        for p in m.parameters()
    )


def fit(
    model: Trainable,
    sim: Simulator,
    rng: np.random.Generator,
    ctx: FitContext,
    *,
    name: str = "model",
    default_budget: Budget | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``model`` for ``ctx.budget`` steps; returns the loop's part of ``fit_info_``."""
    budget = ctx.budget.resolved(default_budget or Budget())
    steps, batch_size = budget.steps or 0, budget.batch_size or 64
    settings = model.loop
    device = torch.device(ctx.device)
    seeds = _seeds(rng)
    model.setup(sim, device, torch.Generator().manual_seed(seeds["init"]))
    gen = torch.Generator(device=device).manual_seed(seeds["train"])
    np_rng = np.random.default_rng(seeds["numpy"])
    choice = choose_precision(ctx.precision, str(device), model, sim)  # auto: measured, cached
    precision = choice.chosen
    amp = _amp(device, precision)
    channels_last = len(getattr(sim, "observation_shape", ())) == 3
    source = BatchSource(sim, device, gen, np_rng, channels_last)
    step = Step(source, batch_size, gen, amp)
    scaler = amp[1]

    ckpt_path = Path(ctx.workdir) / CHECKPOINT if ctx.workdir is not None else None
    # what the checkpoint must match to be resumed (the checkpoint interval may change)
    identity = {"name": name, "params": params or {},
                "budget": {"steps": budget.steps, "batch_size": budget.batch_size}}  # fmt: skip
    checkpoint_every = budget.checkpoint_every or settings.checkpoint_every
    if precision != "float32":  # as in the run id: fp32 checkpoints keep their identity
        identity["precision"] = precision
    start = 0
    if ctx.resume and ckpt_path is not None and ckpt_path.exists():
        start = _restore(ckpt_path, model, gen, np_rng, scaler, identity)
    elif ctx.resume:
        print(f"--resume: no checkpoint at {ckpt_path}; starting from step 0", file=sys.stderr)

    def save_checkpoint(at: int) -> None:
        if ckpt_path is None:
            return
        state = {
            "format": _FORMAT,
            "identity": identity,
            "step": at,
            "modules": {k: m.state_dict() for k, m in model.state_modules().items()},
            "optimizers": {k: o.state_dict() for k, o in model.state_optimizers().items()},
            "scaler": scaler.state_dict(),
            "gen": gen.get_state(),
            "np_rng": np_rng.bit_generator.state,
        }
        _write_atomic(state, ckpt_path)

    sums: dict[str, torch.Tensor] = {}
    shown: dict[str, float] = {}
    window_start, window_steps = time.perf_counter(), 0
    train_seconds = 0.0
    last_good = start

    def sync(at: int) -> None:
        """One device sync: check for divergence, refresh the shown averages."""
        nonlocal window_start, window_steps, train_seconds, last_good
        values = {}
        for k, v in sums.items():  # per-latent logs (kl_per_dim) are vectors
            mean = v / max(window_steps, 1)
            values[k] = float(mean) if mean.ndim == 0 else [float(x) for x in mean]
        bad = [
            k
            for k, v in values.items()
            if not all(math.isfinite(x) for x in (v if isinstance(v, list) else [v]))
        ]
        if bad or not _finite_weights(model):
            where = (
                f"; last good checkpoint (step {last_good}) kept in {ckpt_path}"
                if (ckpt_path is not None and ckpt_path.exists())
                else ""
            )
            raise TrainingDiverged(
                f"training of {name} diverged between steps {at - window_steps} and {at}: "
                f"{'the ' + bad[0] if bad else 'a weight'} became NaN/inf "
                f"(lr={getattr(model, 'lr', '?')}); try a lower lr or smaller loss weights{where}"
            )
        now = time.perf_counter()
        seconds = now - window_start
        train_seconds += seconds
        if window_steps:
            shown.update(values)
            shown["images_per_s"] = window_steps * batch_size / max(seconds, 1e-9)
        sums.clear()
        window_start, window_steps = now, 0

    curve = CurveLog(ctx.workdir, start if ctx.resume else None)
    with progress_bar(f"train {name}", total=steps, enabled=ctx.show_progress) as bar:
        bar.advance(start)
        for i in range(start, steps):
            step.index = i
            logs = model.train_step(step)
            scaler.update()
            for k, v in logs.items():
                sums[k] = sums[k] + v if k in sums else v.detach().float().clone()
            window_steps += 1
            done = i + 1
            ckpt_due = done % checkpoint_every == 0 or done == steps
            report_due = done % settings.report_every == 0 or done == steps
            if done % settings.log_every == 0 or ckpt_due or report_due:
                n = window_steps
                sync(done)
                fields = ("loss", "kl", "images_per_s")
                bar.advance(n, **{k: shown[k] for k in fields if k in shown})
                if ckpt_due:
                    save_checkpoint(done)
                    last_good = done
                if report_due:
                    curve.write(done, shown)
                    ctx.report(step=done, **shown)
    curve.close()

    return {
        "budget": budget.as_dict(),
        "steps": steps,
        "batch_size": batch_size,
        "resumed_from_step": start if ctx.resume and start > 0 else None,
        "checkpoint_every": checkpoint_every,
        "images_per_s": (steps - start) * batch_size / train_seconds if train_seconds else None,
        "train_seconds": train_seconds,
        "device": str(device),
        "precision": precision,
        "precision_choice": choice.as_dict(),  # engine.run replaces it with resolve's (auto)
        "data_path": "compact_table" if source.table is not None else "sim",
        "curve_file": CURVE_FILE if curve.path is not None else None,
        **_final_stats(model, source, seeds["eval"], settings.eval_sample),
    }


def _restore(
    path: Path,
    model: Trainable,
    gen: torch.Generator,
    np_rng: np.random.Generator,
    scaler: torch.amp.GradScaler,
    identity: dict[str, Any],
) -> int:
    state = load_torch(path, None, "cannot resume from")
    if state.get("format") != _FORMAT or state.get("identity") != identity:
        raise UserError(f"cannot resume from {path}: it belongs to a different run")
    try:  # a checkpoint of the right run but the wrong content (shapes, keys): one line
        for k, m in model.state_modules().items():
            m.load_state_dict(state["modules"][k])
        for k, o in model.state_optimizers().items():
            o.load_state_dict(state["optimizers"][k])
        scaler.load_state_dict(state["scaler"]) if state["scaler"] else None
        gen.set_state(state["gen"])
        np_rng.bit_generator.state = state["np_rng"]
        return int(state["step"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(
            f"cannot resume from {path}: its saved state does not fit this model "
            f"({type(exc).__name__}: {first}); remove it to start again"
        ) from None


def _final_stats(model: Trainable, source: BatchSource, seed: int, n: int) -> dict[str, Any]:
    """Reconstruction loss and KL per latent dimension over a fixed sample (same seed, same
    images whatever the training did), so runs compare on equal footing."""
    gen = torch.Generator(device=source.device).manual_seed(seed)
    eval_source = BatchSource.__new__(BatchSource)
    vars(eval_source).update(vars(source), gen=gen, np_rng=np.random.default_rng(seed))
    recon, kl = [], []
    for start in range(0, n, 512):
        x = eval_source(min(512, n - start))
        out = model.evaluate(x, gen)
        recon.append(out["recon"].float().cpu())
        kl.append(out["kl"].float().cpu())
    kl_dims = torch.cat(kl).mean(0)
    return {
        "recon_loss": float(torch.cat(recon).mean()),
        "kl_total": float(kl_dims.sum()),
        "kl_per_dim": [float(v) for v in kl_dims],
        "eval_sample": n,
    }


def adam(params: Any, lr: float, **kwargs: Any) -> torch.optim.Adam:
    """Adam with the fused kernel (one kernel for all parameters instead of a dozen small ops
    per tensor: 8% more images/s for the conv beta-VAE in bf16 on the project's CPU, measured
    alternating in one process; the update rule is the same)."""
    return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)


def maybe_compile(module: torch.nn.Module, enabled: bool) -> Callable[..., Any]:
    """``torch.compile(module)`` when asked; the plain module keeps the weights either way."""
    return torch.compile(module) if enabled else module
