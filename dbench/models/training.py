"""The one training loop every learned model of dbench uses.

What it owns: the device; batches gathered on the device (:mod:`dbench.models.batches`);
the precision (bf16 autocast where it is faster, decided by :mod:`dbench.models.precision`),
channels-last inputs and optionally ``torch.compile``; the progress bar and ``ctx.report``;
atomic checkpoints (weights, optimisers, every RNG state, step) and exact resume; divergence
detection; and the ``fit_info_`` summary. One :class:`Trainer` does one fit (:func:`fit`).

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

from dbench.contracts import Budget, FitContext, Simulator
from dbench.errors import UserError
from dbench.models.batches import BatchSource
from dbench.models.curves import CURVE_FILE, CurveLog
from dbench.models.precision import choose_precision, grad_scaler
from dbench.models.precision import dtype as precision_dtype
from dbench.models.state import load_state_dicts, load_torch, save_torch, state_dicts
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


def _seeds(rng: np.random.Generator) -> dict[str, int]:
    names = ("init", "train", "eval", "numpy")
    seeds = rng.integers(0, 2**63 - 1, size=len(names))
    return {n: int(s) for n, s in zip(names, seeds, strict=True)}


def _write_atomic(obj: Any, path: Path) -> None:
    """Through the one atomic writer: a full disk leaves the previous checkpoint intact."""
    save_torch(path, obj, "checkpoint")


def _not_finite(values: dict[str, float | list[float]]) -> list[str]:
    """The names of the logged values that are NaN or infinite."""
    return [k for k, v in values.items() if not all(map(math.isfinite, np.atleast_1d(v)))]


def _finite_weights(model: Trainable) -> bool:
    return all(
        bool(torch.isfinite(p).all())
        for m in model.state_modules().values()
        for p in m.parameters()
    )


class _Window:
    """The logs of the steps since the last sync, summed on the device: reading a value
    syncs the device, so the loop reads the averages once per window, not once per step."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, logs: dict[str, torch.Tensor]) -> None:
        for k, v in logs.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.detach().float().clone()
        self.steps += 1

    def means(self) -> dict[str, float | list[float]]:
        """Each log's mean over the window (per-latent logs, such as kl_per_dim, are lists)."""
        out: dict[str, float | list[float]] = {}
        for k, v in self.sums.items():
            mean = v / max(self.steps, 1)
            out[k] = float(mean) if mean.ndim == 0 else [float(x) for x in mean]
        return out

    def restart(self) -> tuple[float, int]:
        """(seconds, steps) of the window that ends now; the next one starts."""
        now = time.perf_counter()
        seconds, steps = now - self.started, self.steps
        self.sums, self.steps, self.started = {}, 0, now
        return seconds, steps


class Trainer:
    """One fit of one model: :meth:`run` trains for the context's budget and returns the loop's
    part of ``fit_info_``.

    Each :meth:`one_step` is a model update; every ``log_every`` steps (and whenever a
    checkpoint or a report is due) :meth:`sync` checks for divergence and refreshes the shown
    averages, then :meth:`checkpoint` and :meth:`report` write what is due. :meth:`resume`
    restores a checkpoint (weights, optimisers, scaler, both generators, step), so a resumed
    fit is bit-identical to an uninterrupted one; :meth:`final_stats` scores a fixed sample.
    """

    def __init__(
        self,
        model: Trainable,
        sim: Simulator,
        rng: np.random.Generator,
        ctx: FitContext,
        name: str,
        default_budget: Budget | None,
        params: dict[str, Any] | None,
    ):
        self.model, self.ctx, self.name = model, ctx, name
        self.budget = ctx.budget.resolved(default_budget or Budget())
        self.steps, self.batch_size = self.budget.steps or 0, self.budget.batch_size or 64
        self.settings = model.loop
        self.checkpoint_every = self.budget.checkpoint_every or self.settings.checkpoint_every
        self.device = torch.device(ctx.device)
        # the order of these draws is part of every run's randomness: keep it
        self.seeds = _seeds(rng)
        model.setup(sim, self.device, torch.Generator().manual_seed(self.seeds["init"]))
        gen = torch.Generator(device=self.device).manual_seed(self.seeds["train"])
        np_rng = np.random.default_rng(self.seeds["numpy"])
        # auto: measured once per machine and architecture (cached); engine.run hands over
        # the precision resolve_run decided, so the run id and the training agree
        self.choice = choose_precision(ctx.precision, str(self.device), model, sim)
        self.precision = self.choice.chosen
        self.scaler = grad_scaler(self.device, self.precision)
        self.source = BatchSource.on_device(sim, self.device, gen, np_rng)
        amp = (precision_dtype(self.precision), self.scaler)
        self.step = Step(self.source, self.batch_size, gen, amp)
        workdir = ctx.workdir
        self.checkpoint_path = Path(workdir) / CHECKPOINT if workdir is not None else None
        # what a checkpoint must match to be resumed (the checkpoint interval may change)
        self.identity = {"name": name, "params": params or {},
                         "budget": {"steps": self.budget.steps,
                                    "batch_size": self.budget.batch_size}}  # fmt: skip
        if self.precision != "float32":  # as in the run id: fp32 checkpoints keep theirs
            self.identity["precision"] = self.precision
        self.shown: dict[str, Any] = {}  # the latest averages: progress bar, curve, reports
        self.train_seconds = 0.0
        self.last_good = 0  # the step of the last checkpoint (written from finite states)

    def run(self) -> dict[str, Any]:
        start = self.resume()
        self.last_good = start
        self.window = _Window()  # the clock starts after setup and resume
        curve = CurveLog(self.ctx.workdir, start if self.ctx.resume else None)
        # the bar is off inside dbench.progress.quiet (engine.run sets it for --no-progress)
        with progress_bar(f"train {self.name}", total=self.steps) as bar:
            bar.advance(start)
            for i in range(start, self.steps):
                self.one_step(i)
                done = i + 1
                checkpoint_due = done % self.checkpoint_every == 0 or done == self.steps
                report_due = done % self.settings.report_every == 0 or done == self.steps
                if done % self.settings.log_every == 0 or checkpoint_due or report_due:
                    n = self.sync(done)
                    shown = ("loss", "kl", "images_per_s")
                    bar.advance(n, **{k: self.shown[k] for k in shown if k in self.shown})
                    if checkpoint_due:
                        self.checkpoint(done)
                    if report_due:
                        self.report(done, curve)
        curve.close()
        return self.summary(start, curve)

    def one_step(self, index: int) -> None:
        self.step.index = index
        logs = self.model.train_step(self.step)
        self.scaler.update()
        self.window.add(logs)

    def sync(self, at: int) -> int:
        """One device sync at step ``at``: stop on NaN/inf, refresh the shown averages;
        returns the number of steps since the last sync."""
        values = self.window.means()
        bad = _not_finite(values)
        if bad or not _finite_weights(self.model):
            self._diverged(at, bad[0] if bad else None)
        seconds, steps = self.window.restart()
        self.train_seconds += seconds
        if steps:
            self.shown.update(values)
            self.shown["images_per_s"] = steps * self.batch_size / max(seconds, 1e-9)
        return steps

    def _diverged(self, at: int, log: str | None) -> None:
        path = self.checkpoint_path
        kept = path is not None and path.exists()
        where = f"; last good checkpoint (step {self.last_good}) kept in {path}" if kept else ""
        raise TrainingDiverged(
            f"training of {self.name} diverged between steps {at - self.window.steps} and "
            f"{at}: {'the ' + log if log else 'a weight'} became NaN/inf "
            f"(lr={getattr(self.model, 'lr', '?')}); try a lower lr or smaller loss weights{where}"
        )

    def checkpoint(self, at: int) -> None:
        """Everything exact resume needs, written atomically (after :meth:`sync` found the
        state finite, so a checkpoint is never of a diverged state)."""
        if self.checkpoint_path is not None:
            state = {
                "format": _FORMAT,
                "identity": self.identity,
                "step": at,
                "modules": state_dicts(self.model.state_modules()),
                "optimizers": state_dicts(self.model.state_optimizers()),
                "scaler": self.scaler.state_dict(),
                "gen": self.source.gen.get_state(),
                "np_rng": self.source.np_rng.bit_generator.state,
            }
            _write_atomic(state, self.checkpoint_path)
        self.last_good = at

    def resume(self) -> int:
        """The step to start from: the checkpoint's when the context asks to resume and there
        is one (its state restored), else 0."""
        path = self.checkpoint_path
        if not self.ctx.resume:
            return 0
        if path is None or not path.exists():
            print(f"--resume: no checkpoint at {path}; starting from step 0", file=sys.stderr)
            return 0
        state = load_torch(path, None, "cannot resume from")
        ours = isinstance(state, dict) and state.get("format") == _FORMAT
        if not ours or state.get("identity") != self.identity:
            raise UserError(f"cannot resume from {path}: it belongs to a different run")
        try:  # a checkpoint of the right run but the wrong content (shapes, keys): one line
            load_state_dicts(self.model.state_modules(), state["modules"])
            load_state_dicts(self.model.state_optimizers(), state["optimizers"])
            if state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            self.source.gen.set_state(state["gen"])
            self.source.np_rng.bit_generator.state = state["np_rng"]
            return int(state["step"])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise UserError(
                f"cannot resume from {path}: its saved state does not fit this model "
                f"({type(exc).__name__}: {first}); remove it to start again"
            ) from None

    def report(self, at: int, curve: CurveLog) -> None:
        """The shown averages at step ``at``: a line of the training curve and ``ctx.report``."""
        curve.write(at, self.shown)
        self.ctx.report(step=at, **self.shown)

    def summary(self, start: int, curve: CurveLog) -> dict[str, Any]:
        """The loop's part of ``fit_info_``."""
        trained = (self.steps - start) * self.batch_size
        return {
            "budget": self.budget.as_dict(),
            "steps": self.steps,
            "batch_size": self.batch_size,
            "resumed_from_step": start or None,
            "checkpoint_every": self.checkpoint_every,
            "images_per_s": trained / self.train_seconds if self.train_seconds else None,
            "train_seconds": self.train_seconds,
            "device": str(self.device),
            "precision": self.precision,
            "precision_choice": self.choice.as_dict(),  # engine.run puts resolve's (auto) here
            "data_path": "compact_table" if self.source.table is not None else "sim",
            "curve_file": CURVE_FILE if curve.path is not None else None,
            **self.final_stats(),
        }

    def final_stats(self) -> dict[str, Any]:
        """Reconstruction loss and KL per latent dimension over a fixed sample (same seed,
        same images whatever the training did), so runs compare on equal footing."""
        n = self.settings.eval_sample
        source = self.source.reseeded(self.seeds["eval"])
        recon, kl = [], []
        for start in range(0, n, 512):
            x = source(min(512, n - start))
            out = self.model.evaluate(x, source.gen)
            recon.append(out["recon"].float().cpu())
            kl.append(out["kl"].float().cpu())
        kl_dims = torch.cat(kl).mean(0)
        return {
            "recon_loss": float(torch.cat(recon).mean()),
            "kl_total": float(kl_dims.sum()),
            "kl_per_dim": [float(v) for v in kl_dims],
            "eval_sample": n,
        }


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
    return Trainer(model, sim, rng, ctx, name, default_budget, params).run()


def adam(params: Any, lr: float, **kwargs: Any) -> torch.optim.Adam:
    """Adam with the fused kernel (one kernel for all parameters instead of a dozen small ops
    per tensor: 8% more images/s for the conv beta-VAE in bf16 on the project's CPU, measured
    alternating in one process; the update rule is the same)."""
    return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)


def maybe_compile(module: torch.nn.Module, enabled: bool) -> Callable[..., Any]:
    """``torch.compile(module)`` when asked; the plain module keeps the weights either way."""
    return torch.compile(module) if enabled else module
