"""Figure plumbing (headless matplotlib, PNG writing) and per-run latent pictures.

Summary figures over many runs live in :mod:`dbench.reporting.figures`.

Per-run figures (``dbench show``, the report's per-run section):

- latent traversals, for any model that can decode (:class:`dbench.contracts.Decoder`: the
  VAE family, and PCA through its inverse transform): ``model.decode(z)`` with ``z`` a float32
  tensor ``(n, D)`` returns images ``(n, C, H, W)`` in [0, 1] as a tensor or an array (flat
  ``(n, C*H*W)`` rows are reshaped to the dataset's observation shape). Rows are latents
  ordered by ``record["training"]["kl_per_dim"]`` (Higgins et al. 2017, Fig. 5) when the run
  recorded it, else by the variance of the encodings; with a KL each latent sweeps ``±span``
  (a unit Gaussian prior), without one it sweeps its mean ``± span`` standard deviations;
- a KL-per-latent bar chart, when the run recorded the KL;
- for any 2-D representation (a 2-D VAE, or the oracle on blobs' two factors), the latent
  space coloured by each factor; with a decoder also a decoded grid (Higgins et al. 2017,
  Fig. 6).

Figures a model cannot make are skipped with a message saying why.

Everything uses matplotlib's object API (``Figure``), never pyplot's global state, and
matplotlib is told to use Agg unless the user chose a backend: headless by default.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def _mpl() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")


def new_figure(width: float, height: float) -> Figure:
    _mpl()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Write a PNG atomically; a folder that cannot hold it is one line, not a traceback."""
    from dbench.atomic import atomic_path
    from dbench.errors import UserError

    path = Path(path)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            fig.savefig(f, dpi=dpi, format="png")
    except OSError as exc:
        raise UserError(f"cannot write figure {path}: {exc}") from None
    return path


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def seaborn():
    _mpl()
    import seaborn as sns

    return sns


# -- per-run figures -------------------------------------------------------------------------
def load_run(record: dict[str, Any], results_dir: str | os.PathLike, data_dir: str | None = None):
    """A run's fitted model and its dataset (see :mod:`dbench.engine.saved`)."""
    from dbench.engine.saved import load_dataset, load_model

    return load_model(results_dir, record), load_dataset(record, data_dir)


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def encode(model: Any, sim: Any, v: np.ndarray) -> np.ndarray:
    from dbench.contracts import Observations

    w = sim.sample_nuisance(len(v), np.random.default_rng(0))
    obs = Observations(factors=v, nuisance=w, _render=lambda: sim.sim(v, w))
    z = _numpy(model.encode(obs))
    return z.reshape(len(v), -1)


def decoder_of(model: Any) -> Any:
    """``z -> images in [0, 1]`` (the model's ``decode``), or None when the model cannot decode."""
    from dbench.contracts import Decoder

    return model.decode if isinstance(model, Decoder) else None


def decode(model: Any, z: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Images (n, C, H, W) in [0, 1] from latents (float32), through :func:`decoder_of`;
    flat rows are reshaped to ``shape`` (the dataset's observation shape)."""
    import torch

    fn = decoder_of(model)
    with torch.no_grad():
        x = _numpy(fn(torch.as_tensor(z, dtype=torch.float32)))
    if x.ndim == 2 and shape is not None and x.shape[1] == int(np.prod(shape)):
        x = x.reshape(len(x), *(int(s) for s in shape))
    return np.clip(x, 0.0, 1.0)


def can_decode(model: Any) -> bool:
    return decoder_of(model) is not None


def _mosaic(images: np.ndarray, rows: int, cols: int, gap: int = 2) -> np.ndarray:
    """(rows*cols, C, H, W) -> one (H', W', C) picture with light gaps between tiles."""
    n, c, h, w = images.shape
    canvas = np.ones((rows * (h + gap) - gap, cols * (w + gap) - gap, c), dtype=np.float32)
    for i in range(min(n, rows * cols)):
        r, k = divmod(i, cols)
        canvas[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = images[
            i
        ].transpose(1, 2, 0)
    return canvas


def _show(ax: Any, picture: np.ndarray) -> None:
    if picture.shape[-1] == 1:
        ax.imshow(picture[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(picture, interpolation="nearest")


def latent_order(kl_per_dim: list[float] | None, z_sample: np.ndarray) -> tuple[np.ndarray, str]:
    """Latents by decreasing KL (Higgins Fig. 5); by encoding variance if no KL was recorded."""
    if kl_per_dim is not None and len(kl_per_dim) == z_sample.shape[1]:
        values = np.asarray(kl_per_dim, dtype=np.float64)
        return values, "KL"
    return z_sample.var(axis=0), "var"


def latent_traversals(
    model: Any,
    sim: Any,
    kl_per_dim: list[float] | None = None,
    *,
    span: float = 3.0,
    steps: int = 9,
    seed: int = 0,
    max_latents: int | None = None,
) -> Figure:
    """Rows: latents in decreasing KL (or variance); columns: that latent swept with the
    others at the inferred mean of one reference image (Higgins et al. 2017, Fig. 5/7).

    With a KL (a unit Gaussian prior) each latent sweeps ``-span..span``; without one (PCA,
    whose components have their own scale) it sweeps its mean ``± span`` standard deviations.
    """
    rng = np.random.default_rng(seed)
    v = sim.sample_factors(256, rng)
    z_sample = encode(model, sim, v)
    values, what = latent_order(kl_per_dim, z_sample)
    order = np.argsort(-values, kind="stable")[:max_latents]
    reference = z_sample[0]
    unit = np.linspace(-span, span, steps)
    prior = what == "KL"
    centre = np.zeros(z_sample.shape[1]) if prior else z_sample.mean(axis=0)
    scale = np.ones(z_sample.shape[1]) if prior else z_sample.std(axis=0)
    z = np.repeat(reference[None, :], len(order) * steps, axis=0)
    for row, dim in enumerate(order):
        z[row * steps : (row + 1) * steps, dim] = centre[dim] + unit * scale[dim]
    images = decode(model, z, tuple(sim.observation_shape))
    picture = _mosaic(images, len(order), steps)
    h, w = images.shape[2:]
    fig = new_figure(1.0 + 0.75 * steps, 0.6 + 0.75 * len(order))
    ax = fig.subplots()
    _show(ax, picture)
    ax.set_yticks(
        [r * (h + 2) + h / 2 for r in range(len(order))],
        [f"z{d} {what}={values[d]:.2f}" for d in order],
    )
    ticks = [f"{g:+.1f}" if prior else f"{g:+.1f}σ" for g in unit]
    ax.set_xticks([k * (w + 2) + w / 2 for k in range(steps)], ticks)
    ax.tick_params(length=0, labelsize=8)
    for side in ax.spines.values():
        side.set_visible(False)
    sweep = f"±{span:g}" if prior else f"mean ±{span:g} std"
    ax.set_title(f"{_name(sim)}: latent traversals ({sweep}; rows by decreasing {what})")
    return fig


def _name(sim: Any) -> str:
    return str(getattr(sim, "name", type(sim).__name__))


def kl_bars(kl_per_dim: list[float], title: str = "") -> Figure:
    values = np.asarray(kl_per_dim, dtype=np.float64)
    fig = new_figure(max(3.5, 1.5 + 0.4 * len(values)), 3)
    ax = fig.subplots()
    ax.bar([f"z{i}" for i in range(len(values))], values, color="tab:blue")
    ax.set_ylabel("KL (nats)")
    ax.set_title(f"{title}: KL per latent" if title else "KL per latent", fontsize=10)
    return fig


def training_curve(rows: list[dict[str, Any]], title: str = "") -> Figure:
    """Loss, reconstruction and KL over training steps (the run's ``curve.jsonl``), and the
    KL of each latent on a second panel when it was logged."""
    steps = [r["step"] for r in rows]
    per_dim = [r.get("kl_per_dim") for r in rows]
    has_dims = all(isinstance(k, list) and k for k in per_dim)
    fig = new_figure(9 if has_dims else 5, 3.2)
    axes = fig.subplots(1, 2 if has_dims else 1, squeeze=False)[0]
    for key, label in (("loss", "loss"), ("recon", "reconstruction"), ("kl", "KL (total)")):
        values = [r.get(key) for r in rows]
        if all(isinstance(v, (int, float)) for v in values):
            axes[0].plot(steps, values, label=label)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("nats per image")
    axes[0].legend(fontsize=8)
    axes[0].set_title(f"{title}: training curve" if title else "training curve", fontsize=10)
    if has_dims:
        kl = np.asarray(per_dim, dtype=np.float64)
        for i in range(kl.shape[1]):
            axes[1].plot(steps, kl[:, i], label=f"z{i}")
        axes[1].set_xlabel("step")
        axes[1].set_ylabel("KL (nats)")
        axes[1].set_title("KL per latent", fontsize=10)
        axes[1].legend(fontsize=7, ncol=2)
    return fig


def _curve_rows(record: dict[str, Any], results_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The run's training curve, read only from its own artifact folder."""
    from dbench.engine.store import artifacts_dir
    from dbench.models.curves import read_curve

    training = record.get("training") if isinstance(record.get("training"), dict) else {}
    name = training.get("curve_file")
    if not isinstance(name, str) or Path(name).name != name or not name:
        return []
    path = artifacts_dir(Path(results_dir), record["run_id"]) / name
    return read_curve(path) if path.is_file() else []


def latent_space_2d(model: Any, sim: Any, *, n: int = 1500, seed: int = 0) -> Figure:
    """Mean encodings of ``n`` observations coloured by each factor (Higgins Fig. 6, left)."""
    v = sim.sample_factors(n, np.random.default_rng(seed))
    z = encode(model, sim, v)
    varying = [k for k, size in enumerate(sim.factor_sizes) if size > 1]
    fig = new_figure(3.2 * len(varying), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(varying), squeeze=False)[0])
    for ax, k in zip(axes, varying, strict=True):
        points = ax.scatter(z[:, 0], z[:, 1], c=v[:, k], s=4, cmap="viridis")
        ax.set_title(f"coloured by {sim.factor_names[k]}", fontsize=10)
        ax.set_xlabel("z0")
        ax.set_ylabel("z1")
        fig.colorbar(points, ax=ax, shrink=0.8)
    fig.suptitle(f"{_name(sim)}: the 2-D representation", fontsize=11)
    return fig


def traversal_grid_2d(model: Any, sim: Any, *, span: float = 3.0, steps: int = 9) -> Figure:
    """Decodings over a regular grid of the 2-D latent space (Higgins Fig. 6, right)."""
    grid = np.linspace(-span, span, steps)
    z0, z1 = np.meshgrid(grid, grid[::-1])  # z1 grows upwards, as on the scatter plots
    z = np.stack([z0.ravel(), z1.ravel()], axis=1)
    images = decode(model, z, tuple(sim.observation_shape))
    fig = new_figure(0.6 * steps + 1, 0.6 * steps + 1)
    ax = fig.subplots()
    _show(ax, _mosaic(images, steps, steps))
    ax.set_axis_off()
    ax.set_title(f"{_name(sim)}: decoded grid, z0 → right, z1 ↑ (±{span:g})")
    return fig


def run_figures(
    record: dict[str, Any],
    results_dir: str | os.PathLike,
    data_dir: str | None = None,
    *,
    span: float = 3.0,
    steps: int = 9,
    seed: int = 0,
) -> tuple[dict[str, Figure], list[str]]:
    """Every per-run figure this run's model can make, and why any other was skipped."""
    training = record.get("training") if isinstance(record.get("training"), dict) else {}
    kl = training.get("kl_per_dim")
    kl = kl if isinstance(kl, list) and kl and all(_finite(k) for k in kl) else None
    title = str(record["config"]["dataset"])
    figures, skipped = {}, []
    rows = _curve_rows(record, results_dir)
    if len(rows) >= 2:
        figures["curve"] = training_curve(rows, title)
    else:
        skipped.append("training curve skipped: the run has no curve file with two points")
    if kl is not None:
        figures["kl"] = kl_bars(kl, title)
    else:
        skipped.append("KL bar chart skipped: the record has no training.kl_per_dim")
    model, sim = load_run(record, results_dir, data_dir)
    name = record["config"]["model"]
    decodes = can_decode(model)
    if decodes:
        figures["traversals"] = latent_traversals(model, sim, kl, span=span, steps=steps, seed=seed)
    else:
        skipped.append(
            f"latent traversals skipped: model {name!r} has no decode(z) (dbench.contracts.Decoder)"
        )
    dim = getattr(model, "latent_dim", None)
    if dim is None:
        dim = encode(model, sim, sim.sample_factors(2, np.random.default_rng(seed))).shape[1]
    if dim == 2:
        figures["latent_space"] = latent_space_2d(model, sim, seed=seed)
        if decodes:
            figures["latent_grid"] = traversal_grid_2d(model, sim, span=span, steps=steps)
    else:
        skipped.append(f"2-D latent space plots skipped: the representation has {dim} dimensions")
    return figures, skipped


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
