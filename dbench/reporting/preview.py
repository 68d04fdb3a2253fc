"""What ``dbench data info`` and ``dbench data show`` print and draw, for any dataset.

Kept out of the CLI module so it stays light (typer and stdlib only at import); works on any
object honouring the Simulator protocol, plugins included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dbench.contracts import Preparable
from dbench.errors import UserError


def info_lines(name: str, sim: Any) -> list[str]:
    """Factors, sizes, observation shape, decoding, source, checksum and cache state.

    A corrupt cache does not stop the report: ``describe()`` may refuse it (dSprites' checksum
    is its cache's), and the cache line then says what is wrong and how to rebuild it.
    """
    try:
        info = sim.describe()
    except UserError:
        info = {"source": "unavailable", "checksum": "unavailable (see cache)"}
    sizes = tuple(int(s) for s in sim.factor_sizes)
    factors = ", ".join(f"{n} ({s})" for n, s in zip(sim.factor_names, sizes, strict=True))
    lines = [
        f"dataset      {name}",
        f"factors      {factors}",
        f"observations {int(np.prod(sizes, dtype=np.int64)):,} of shape "
        f"{'x'.join(map(str, sim.observation_shape))}",
        f"binary       {bool(getattr(sim, 'binary', False))}",
        f"nuisance     {bool(getattr(sim, 'has_nuisance', False))}",
        f"source       {info.get('source')}",
        f"checksum     {info.get('checksum')}",
        f"cache        {cache_state(sim)}",
    ]
    return lines


def cache_state(sim: Any) -> str:
    """The dataset's own account when it declares a cache (:class:`Preparable`), else "none"."""
    return sim.cache_state() if isinstance(sim, Preparable) else "none"


def _traversal(sim: Any, k: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """Factor vectors equal to one random base except factor k, which sweeps its values."""
    size = int(sim.factor_sizes[k])
    values = np.unique(np.linspace(0, size - 1, min(cols, size)).round().astype(np.int64))
    v = np.repeat(sim.sample_factors(1, rng), len(values), axis=0)
    v[:, k] = values
    return v


def _images(sim: Any, v: np.ndarray, w: Any) -> np.ndarray:
    x = sim.sim(v, w).detach().float().cpu().clamp(0, 1).numpy()
    return x.transpose(0, 2, 3, 1)  # (n, H, W, C) for imshow


#: point sizes of the preview's title, row labels and value labels (saved at 80 dpi)
TITLE_SIZE, ROW_SIZE, VALUE_SIZE = 14, 11, 10


def show(sim: Any, out: Path, seed: int = 0, samples: int = 16, cols: int = 10) -> Path:
    """PNG: ``samples`` random images, then one row per factor traversal (the nuisance, if
    any, held fixed along a row so only the factor moves), each image of a traversal labelled
    with the factor's value (its index on the grid) below it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    cols = max(cols, 2)
    rows: list[tuple[str, np.ndarray, list[str]]] = []
    v = sim.sample_factors(samples, rng)
    x = _images(sim, v, sim.sample_nuisance(samples, rng))
    for start in range(0, samples, cols):
        rows.append(("samples" if start == 0 else "", x[start : start + cols], []))
    for k, fname in enumerate(sim.factor_names):
        vk = _traversal(sim, k, cols, rng)
        w1 = sim.sample_nuisance(1, rng)
        wk = None if w1 is None else np.repeat(w1, len(vk), axis=0)
        values = [str(i) for i in vk[:, k]]
        rows.append((f"{fname}\n(0..{sim.factor_sizes[k] - 1})", _images(sim, vk, wk), values))
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 1.2, 1.0 + len(rows) * 1.35),
                             squeeze=False)  # fmt: skip
    for r, (label, imgs, values) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():  # no frame, but keep the axis for the row label
                spine.set_visible(False)
            if c < len(imgs):
                img = imgs[c]
                if img.shape[2] == 1:
                    ax.imshow(img[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                else:
                    ax.imshow(img, interpolation="nearest")
            if c < len(values):
                ax.set_xlabel(values[c], fontsize=VALUE_SIZE, labelpad=2)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=ROW_SIZE)
    fig.suptitle(
        f"{sim.name} ({sim.describe().get('source')}): random samples, then each factor swept "
        "alone",
        fontsize=TITLE_SIZE,
    )
    fig.tight_layout()
    out = Path(out)
    from dbench.reporting.plots import save

    save(fig, out, dpi=80)
    plt.close(fig)
    return out
