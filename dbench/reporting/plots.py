"""Figures for papers: summaries over runs (seaborn) and per-run latent pictures.

Summary figures take the per-run frame of :func:`dbench.reporting.aggregate.filtered_runs`:

- score vs beta per model (the beta sweeps of Higgins et al. 2017, Fig. 7 style);
- the distribution of a score over seeds per configuration (Locatello et al. 2019, Fig. 6/7:
  every run shown, never one number);
- reconstruction loss vs disentanglement, one point per run (the trade-off beta controls).

Per-run figures need a model that can decode. The protocol (duck-typed, nothing to inherit):

- ``model.decode(z)`` with ``z`` a float32 tensor ``(n, D)`` returns images ``(n, C, H, W)``
  in [0, 1] (probabilities or means, not logits), as a tensor or an array;
- ``model.latent_dim`` (optional: otherwise the width of ``encode``'s output);
- ``record["training"]["kl_per_dim"]`` orders latents by their KL (Higgins et al. 2017, Fig. 5).

Latent traversals (each row one latent, most informative first), a KL-per-latent bar chart,
and, for 2-D latents, the latent space coloured by each factor plus a decoded grid (Higgins et
al. 2017, Fig. 6). Figures a model cannot make are skipped with a message saying why.

Everything uses matplotlib's object API (``Figure``), never pyplot's global state, and
matplotlib is told to use Agg unless the user chose a backend: headless by default.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
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


def _sns():
    _mpl()
    import seaborn as sns

    return sns


# -- summary figures -------------------------------------------------------------------------
def _with_budget_label(runs: pd.DataFrame) -> pd.DataFrame:
    """Label per configuration; the budget joins the label when runs differ in it."""
    from dbench.reporting.labels import budget_text

    runs = runs.copy()
    if runs["budget"].nunique() > 1:
        runs["config"] = runs["label"] + " [" + runs["budget"].map(budget_text) + "]"
    else:
        runs["config"] = runs["label"]
    return runs


def score_vs_beta(runs: pd.DataFrame, score: str) -> Figure | None:
    """Mean ± std over seeds of ``score`` against beta, one line per configuration family
    (model, its other kwargs and budget); None when no run has a beta."""
    import json

    from dbench.reporting.labels import config_label

    data = _with_budget_label(runs.dropna(subset=["beta", score]))
    if data.empty:
        return None

    def family(row: Any) -> str:
        others = {k: v for k, v in json.loads(row["kwargs"]).items() if k != "beta"}
        return row["config"].replace(row["label"], config_label(row["model"], others), 1)

    data["family"] = data.apply(family, axis=1)
    sns = _sns()
    fig = new_figure(6.5, 4.2)
    ax = fig.subplots()
    sns.lineplot(
        data=data, x="beta", y=score, hue="family", errorbar="sd", marker="o",
        err_style="bars", ax=ax,
    )  # fmt: skip
    ax.scatter(data["beta"], data[score], s=10, color="0.3", alpha=0.4, zorder=0)
    if (data["beta"] > 0).all() and data["beta"].max() / data["beta"].min() >= 10:
        ax.set_xscale("log")
    ax.set_xlabel("β")
    ax.set_ylabel(score)
    ax.legend(title=None, fontsize=8)
    ax.set_title("mean ± std over seeds; grey dots are runs", fontsize=10)
    return fig


def seed_distribution(runs: pd.DataFrame, score: str, lower_is_better: bool = False) -> Figure:
    """Box plot plus every run as a dot, one row per configuration (Locatello et al. 2019)."""
    data = _with_budget_label(runs.dropna(subset=[score]))
    medians = data.groupby("config")[score].median().sort_values(ascending=lower_is_better)
    order = list(medians.index)
    sns = _sns()
    longest = max((len(c) for c in order), default=10)
    fig = new_figure(4.5 + 0.075 * longest, 1.2 + 0.45 * max(len(order), 1))
    ax = fig.subplots()
    with warnings.catch_warnings():
        # seaborn 0.13 hands matplotlib 3.11 a deprecated ``vert``: not the user's business
        warnings.filterwarnings("ignore", message=".*vert: bool was deprecated")
        sns.boxplot(
            data=data, x=score, y="config", order=order, color="0.9", showfliers=False, ax=ax
        )
    sns.stripplot(
        data=data, x=score, y="config", order=order, hue="model", size=5, jitter=0.15,
        legend=False, ax=ax,
    )  # fmt: skip
    ax.set_ylabel("")
    counts = data.groupby("config").size()
    ax.set_yticks(range(len(order)), [f"{c} (n={counts[c]})" for c in order])
    ax.set_title("over seeds: box = quartiles, dots = runs", fontsize=10)
    return fig


def tradeoff(runs: pd.DataFrame, score: str) -> Figure | None:
    """Reconstruction loss vs ``score``, one point per run; None if no run recorded the loss."""
    data = runs.dropna(subset=["recon_loss", score])
    if data.empty:
        return None
    sns = _sns()
    fig = new_figure(6, 4)
    ax = fig.subplots()
    size = "beta" if data["beta"].notna().any() else None
    sns.scatterplot(data=data, x="recon_loss", y=score, hue="model", size=size, ax=ax)
    ax.set_xlabel("reconstruction loss (nats per image, lower is better)")
    ax.set_ylabel(score)
    ax.set_title("one point per run", fontsize=10)
    return fig


def summary_figures(
    runs: pd.DataFrame, score: str, lower_is_better: bool = False
) -> tuple[dict[str, Figure], list[str]]:
    """Every summary figure for ``score``, per dataset; plus why any figure was left out."""
    figures, skipped = {}, []
    if runs.empty or score not in runs:
        return figures, [f"no run has {score}"]
    many = runs["dataset"].nunique() > 1
    for dataset, data in runs.groupby("dataset"):
        prefix = f"{dataset}-" if many else ""
        figures[f"{prefix}seeds"] = seed_distribution(data, score, lower_is_better)
        made = score_vs_beta(data, score)
        if made is None:
            skipped.append(f"{dataset}: score vs beta skipped (no run has a beta)")
        else:
            figures[f"{prefix}beta"] = made
        made = tradeoff(data, score)
        if made is None:
            skipped.append(f"{dataset}: trade-off skipped (no run recorded training.recon_loss)")
        else:
            figures[f"{prefix}tradeoff"] = made
    return figures, skipped


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


def decode(model: Any, z: np.ndarray) -> np.ndarray:
    """Images (n, C, H, W) in [0, 1] from latents (float32), through :func:`decoder_of`."""
    import torch

    fn = decoder_of(model)
    with torch.no_grad():
        x = _numpy(fn(torch.as_tensor(z, dtype=torch.float32)))
    return np.clip(x, 0.0, 1.0)


def can_decode(model: Any) -> bool:
    return decoder_of(model) is not None


def class_can_decode(cls: type) -> bool:
    """Whether instances will decode, judged before loading anything (the report uses it)."""
    from dbench.contracts import Decoder

    return isinstance(cls, type) and issubclass(cls, Decoder)


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
    """Rows: latents in decreasing KL; columns: that latent set to ``-span..span`` with the
    others at the inferred mean of one reference image (Higgins et al. 2017, Fig. 5/7)."""
    rng = np.random.default_rng(seed)
    v = sim.sample_factors(256, rng)
    z_sample = encode(model, sim, v)
    values, what = latent_order(kl_per_dim, z_sample)
    order = np.argsort(-values, kind="stable")[:max_latents]
    reference = z_sample[0]
    grid = np.linspace(-span, span, steps)
    z = np.repeat(reference[None, :], len(order) * steps, axis=0)
    for row, dim in enumerate(order):
        z[row * steps : (row + 1) * steps, dim] = grid
    images = decode(model, z)
    picture = _mosaic(images, len(order), steps)
    h, w = images.shape[2:]
    fig = new_figure(1.0 + 0.75 * steps, 0.4 + 0.75 * len(order))
    ax = fig.subplots()
    _show(ax, picture)
    ax.set_yticks(
        [r * (h + 2) + h / 2 for r in range(len(order))],
        [f"z{d} {what}={values[d]:.2f}" for d in order],
    )
    ax.set_xticks([k * (w + 2) + w / 2 for k in range(steps)], [f"{g:+.1f}" for g in grid])
    ax.tick_params(length=0, labelsize=8)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(f"latent traversals (±{span:g}; rows by decreasing {what})")
    return fig


def kl_bars(kl_per_dim: list[float]) -> Figure:
    values = np.asarray(kl_per_dim, dtype=np.float64)
    fig = new_figure(max(3.5, 1.5 + 0.4 * len(values)), 3)
    ax = fig.subplots()
    ax.bar([f"z{i}" for i in range(len(values))], values, color="tab:blue")
    ax.set_ylabel("KL (nats)")
    ax.set_title("KL per latent", fontsize=10)
    return fig


def latent_space_2d(model: Any, sim: Any, *, n: int = 1500, seed: int = 0) -> Figure:
    """Mean encodings of ``n`` observations coloured by each factor (Higgins Fig. 6, left)."""
    v = sim.sample_factors(n, np.random.default_rng(seed))
    z = encode(model, sim, v)
    varying = [k for k, size in enumerate(sim.factor_sizes) if size > 1]
    fig = new_figure(3.2 * len(varying), 3.2)
    axes = np.atleast_1d(fig.subplots(1, len(varying), squeeze=False)[0])
    for ax, k in zip(axes, varying, strict=True):
        points = ax.scatter(z[:, 0], z[:, 1], c=v[:, k], s=4, cmap="viridis")
        ax.set_title(f"coloured by {sim.factor_names[k]}")
        ax.set_xlabel("z0")
        ax.set_ylabel("z1")
        fig.colorbar(points, ax=ax, shrink=0.8)
    return fig


def traversal_grid_2d(model: Any, *, span: float = 3.0, steps: int = 9) -> Figure:
    """Decodings over a regular grid of the 2-D latent space (Higgins Fig. 6, right)."""
    grid = np.linspace(-span, span, steps)
    z0, z1 = np.meshgrid(grid, grid[::-1])  # z1 grows upwards, as on the scatter plots
    images = decode(model, np.stack([z0.ravel(), z1.ravel()], axis=1))
    fig = new_figure(0.6 * steps + 1, 0.6 * steps + 1)
    ax = fig.subplots()
    _show(ax, _mosaic(images, steps, steps))
    ax.set_axis_off()
    ax.set_title(f"decoded grid, z0 → right, z1 ↑ (±{span:g})")
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
    figures, skipped = {}, []
    if kl is not None:
        figures["kl"] = kl_bars(kl)
    else:
        skipped.append("KL bar chart skipped: the record has no training.kl_per_dim")
    model, sim = load_run(record, results_dir, data_dir)
    name = record["config"]["model"]
    if not can_decode(model):
        skipped.append(
            f"latent traversals skipped: model {name!r} has no decode(z) (dbench.contracts.Decoder)"
        )
        return figures, skipped
    figures["traversals"] = latent_traversals(model, sim, kl, span=span, steps=steps, seed=seed)
    dim = getattr(model, "latent_dim", None)
    if dim is None:
        dim = encode(model, sim, sim.sample_factors(1, np.random.default_rng(seed))).shape[1]
    if dim == 2:
        figures["latent_space"] = latent_space_2d(model, sim, seed=seed)
        figures["latent_grid"] = traversal_grid_2d(model, span=span, steps=steps)
    else:
        skipped.append(f"2-D latent space plots skipped: the latent has {dim} dimensions")
    return figures, skipped


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
