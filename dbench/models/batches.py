"""Training images on the device, drawn from seeded generators the training loop checkpoints.

A simulator with a :class:`~dbench.datasets.base.CompactTable` keeps its whole dataset on the
training device, compactly; a batch is indices drawn from a seeded ``torch.Generator`` on the
device, one ``index_select`` and a decode in place (no DataLoader, no per-batch Python
collation). Other simulators (those with nuisance factors) render each batch with ``sim``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dbench.contracts import CompactStorable, Simulator


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
        memory_format: torch.memory_format,
        table: Any,
    ):
        self.sim, self.device, self.gen, self.np_rng = sim, device, gen, np_rng
        self.memory_format, self.table = memory_format, table

    @classmethod
    def on_device(
        cls, sim: Simulator, device: torch.device, gen: torch.Generator, np_rng: np.random.Generator
    ) -> BatchSource:
        """The simulator's compact table moved to ``device`` (when it has one); images as the
        nets want them (channels-last for images with channels)."""
        table = sim.compact_table(str(device)) if isinstance(sim, CompactStorable) else None
        if table is not None and table.data.device != device:
            table = type(table)(table.data.to(device), table.decode)
        channels_last = len(getattr(sim, "observation_shape", ())) == 3
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        return cls(sim, device, gen, np_rng, fmt, table)

    def reseeded(self, seed: int) -> BatchSource:
        """The same data drawn from new generators seeded with ``seed`` (same seed, same
        images, whatever the training drew)."""
        gen = torch.Generator(device=self.device).manual_seed(seed)
        rng = np.random.default_rng(seed)
        return BatchSource(self.sim, self.device, gen, rng, self.memory_format, self.table)

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
