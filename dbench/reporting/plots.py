"""Figure plumbing (headless matplotlib, PNG writing) and per-run latent pictures.

Summary figures over many runs live in :mod:`dbench.reporting.figures`.

Per-run figures (``dbench show``, the report's per-run section):

- latent traversals, for any model that can decode (:class:`dbench.contracts.Decoder`: the
  VAE family, PCA through its inverse transform; ``model.decode(z)``, ``z`` float32 ``(n, D)``,
  gives images ``(n, C, H, W)`` in [0, 1], flat rows reshaped to the observation shape). Rows
  are latents by ``training.kl_per_dim`` (Higgins et al. 2017, Fig. 5) when recorded, else by
  encoding variance; with a KL each latent sweeps ``±span`` (a unit Gaussian prior), without
  one its mean ``± span`` standard deviations;
- a KL-per-latent bar chart, when the run recorded the KL;
- for any 2-D representation (a 2-D VAE, or the oracle on blobs' two factors), the latent
  space coloured by each factor; with a decoder also a decoded grid (Higgins et al. 2017,
  Fig. 6).

Titles name the run (:func:`dbench.reporting.labels.run_title`); a collapsed posterior is said
on its traversals (:func:`collapse_note`); the data is the source the run recorded
(:func:`load_data`). Figures a model cannot make are skipped with a message saying why.

Everything uses matplotlib's object API (``Figure``), never pyplot's global state, and
matplotlib is told to use Agg unless the user chose a backend: headless by default.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dbench.errors import UserError
from dbench.reporting.labels import figure_title, run_title

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

    path = Path(path)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f, _plain_text(fig):
            fig.savefig(f, dpi=dpi, format="png")
    except OSError as exc:
        raise UserError(f"cannot write figure {path}: {exc}") from None
    return path


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    with _plain_text(fig):
        fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


@contextlib.contextmanager
def _plain_text(fig: Figure) -> Iterator[None]:
    """Every label drawn as the text it is: record values (``$\\cmd{x}$``) are never parsed
    as mathtext or TeX, neither the texts made so far nor the tick labels made while drawing."""
    import matplotlib
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)
        text.set_usetex(False)
    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        yield


def seaborn():
    _mpl()
    import seaborn as sns

    return sns


# -- per-run figures -------------------------------------------------------------------------
def load_run(record: dict[str, Any], results_dir: str | os.PathLike, data_dir: str | None = None):
    """A run's fitted model and its dataset (see :mod:`dbench.engine.saved`)."""
    from dbench.engine.saved import load_model

    return load_model(results_dir, record), load_data(record, data_dir)


def load_data(record: dict[str, Any], data_dir: str | None = None) -> Any:
    """The run's dataset, from the source it recorded (``source=auto`` answers ``cache`` once
    ``dbench data prepare`` ran, though the run used ``procedural``) when the dataset takes a
    ``source`` and the run pinned none; else, or if that fails, as configured. Checked against
    the recorded source and checksum by :func:`dbench.engine.saved.load_dataset`."""
    import inspect

    from dbench.engine.saved import load_dataset
    from dbench.registry import DATASETS

    config = record["config"]
    kwargs = dict(config.get("dataset_kwargs") or {})
    source = (record.get("dataset") or {}).get("source")
    takes = "source" in inspect.signature(DATASETS.get(config["dataset"])).parameters
    if not (takes and isinstance(source, str) and kwargs.get("source", "auto") == "auto"):
        return load_dataset(record, data_dir)
    pinned = {**record, "config": {**config, "dataset_kwargs": {**kwargs, "source": source}}}
    try:
        return load_dataset(pinned, data_dir)
    except UserError as first:
        try:
            return load_dataset(record, data_dir)
        except UserError:
            raise first from None


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


def _mosaic(images: np.ndarray, rows: int, cols: int, gap: int = 2) -> np.ndarray:
    """(rows*cols, C, H, W) -> one (H', W', C) picture with light gaps between tiles."""
    n, c, h, w = images.shape
    canvas = np.ones((rows * (h + gap) - gap, cols * (w + gap) - gap, c), dtype=np.float32)
    for i in range(min(n, rows * cols)):
        r, k = divmod(i, cols)
        y, x = r * (h + gap), k * (w + gap)
        canvas[y : y + h, x : x + w] = images[i].transpose(1, 2, 0)
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
    title: str | None = None,
) -> Figure:
    """Rows: latents in decreasing KL (or variance); columns: that latent swept with the
    others at the inferred mean of one reference image (Higgins et al. 2017, Fig. 5/7).

    With a KL (a unit Gaussian prior) each latent sweeps ``-span..span``; without one (PCA,
    whose components have their own scale) it sweeps its mean ``± span`` standard deviations.
    ``title`` names the run; a collapsed posterior is said on the picture (:func:`collapse_note`).
    """
    z_sample = encode(model, sim, sim.sample_factors(256, np.random.default_rng(seed)))
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
    rows = [f"z{d} {what}={values[d]:.2f}" for d in order]
    ax.set_yticks([r * (h + 2) + h / 2 for r in range(len(order))], rows)
    ticks = [f"{g:+.1f}" if prior else f"{g:+.1f}σ" for g in unit]
    ax.set_xticks([k * (w + 2) + w / 2 for k in range(steps)], ticks)
    ax.tick_params(length=0, labelsize=8)
    for side in ax.spines.values():
        side.set_visible(False)
    sweep = f"±{span:g}" if prior else f"mean ±{span:g} std"
    kind = f"latent traversals ({sweep}; rows by decreasing {what})"
    ax.set_title(figure_title(title, kind, _name(sim), fig, 10), fontsize=10)
    note = collapse_note(kl_per_dim, images.reshape(len(order), steps, -1))
    if note:
        ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", fontsize=10,
                wrap=True, bbox={"facecolor": "white", "edgecolor": "tab:red", "alpha": 0.9})
    return fig


#: a latent whose KL from the prior stays below this many nats carries no information
COLLAPSED_KL = 0.01
COLLAPSED = "posterior collapsed: no latent carries information"


def collapse_note(kl_per_dim: list[float] | None, rows: np.ndarray | None = None) -> str | None:
    """Why a traversal grid shows nothing, or None. From the run's recorded KL per latent when
    there is one: every latent below :data:`COLLAPSED_KL` nats (the decoder then draws one
    image, often all black, whatever z is); without one (PCA, plugins) from the decoded images
    ``rows`` (latents x steps x pixels): no sweep moves any pixel by more than 1/255."""
    if kl_per_dim is not None and len(kl_per_dim):
        if max(kl_per_dim) < COLLAPSED_KL:
            return f"{COLLAPSED} (every latent's KL < {COLLAPSED_KL:g} nats)"
        return None
    if rows is not None and rows.size and np.ptp(rows, axis=1).max() < 1 / 255:
        return "no latent changes the decoded image: every traversal row is one image"
    return None


def _name(sim: Any) -> str:
    return str(getattr(sim, "name", type(sim).__name__))


def kl_bars(kl_per_dim: list[float], title: str = "") -> Figure:
    values = np.asarray(kl_per_dim, dtype=np.float64)
    fig = new_figure(max(5.0, 1.5 + 0.4 * len(values)), 3.2)
    ax = fig.subplots()
    ax.bar([f"z{i}" for i in range(len(values))], values, color="tab:blue")
    ax.set_ylabel("KL (nats)")
    ax.set_title(figure_title(title, "KL per latent", fig=fig), fontsize=9)
    return fig


def training_curve(rows: list[dict[str, Any]], title: str = "") -> Figure:
    """Loss, reconstruction and KL over training steps (the run's ``curve.jsonl``), and the
    KL of each latent on a second panel when it was logged."""
    steps = [r["step"] for r in rows]
    per_dim = [r.get("kl_per_dim") for r in rows]
    has_dims = all(isinstance(k, list) and k for k in per_dim)
    fig = new_figure(9 if has_dims else 5.5, 3.4)
    axes = fig.subplots(1, 2 if has_dims else 1, squeeze=False)[0]
    for key, label in (("loss", "loss"), ("recon", "reconstruction"), ("kl", "KL (total)")):
        values = [r.get(key) for r in rows]
        if all(isinstance(v, (int, float)) for v in values):
            axes[0].plot(steps, values, label=label)
    axes[0].set(xlabel="step", ylabel="nats per image")
    axes[0].legend(fontsize=8)
    fig.suptitle(figure_title(title, "training curve", fig=fig), fontsize=9)
    if has_dims:
        kl = np.asarray(per_dim, dtype=np.float64)
        for i in range(kl.shape[1]):
            axes[1].plot(steps, kl[:, i], label=f"z{i}")
        axes[1].set(xlabel="step", ylabel="KL (nats)")
        axes[1].set_title("KL per latent", fontsize=10)
        axes[1].legend(fontsize=7, ncol=2)
    return fig


def _curve_rows(record: dict[str, Any], results_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The run's training curve, read only from its own artifact folder."""
    from dbench.engine.store import own_file
    from dbench.models.curves import read_curve

    training = record.get("training") if isinstance(record.get("training"), dict) else {}
    name = training.get("curve_file")
    if not isinstance(name, str) or Path(name).name != name or not name:
        return []
    path = own_file(Path(results_dir), record["run_id"], name, "curve file")
    return read_curve(path) if path.is_file() else []


def latent_space_2d(
    model: Any, sim: Any, *, n: int = 1500, seed: int = 0, title: str | None = None
) -> Figure:
    """Mean encodings of ``n`` observations coloured by each factor (Higgins Fig. 6, left);
    ``model`` is anything with ``encode(observations)`` (saved codes too)."""
    v = sim.sample_factors(n, np.random.default_rng(seed))
    z = encode(model, sim, v)
    varying = [k for k, size in enumerate(sim.factor_sizes) if size > 1]
    fig = new_figure(3.2 * len(varying), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(varying), squeeze=False)[0])
    for ax, k in zip(axes, varying, strict=True):
        points = ax.scatter(z[:, 0], z[:, 1], c=v[:, k], s=4, cmap="viridis")
        ax.set_title(f"coloured by {sim.factor_names[k]}", fontsize=10)
        ax.set(xlabel="z0", ylabel="z1")
        fig.colorbar(points, ax=ax, shrink=0.8)
    kind = "the 2-D representation"
    fig.suptitle(figure_title(title, kind, _name(sim), fig, 10), fontsize=10)
    return fig


def traversal_grid_2d(
    model: Any, sim: Any, *, span: float = 3.0, steps: int = 9, title: str | None = None
) -> Figure:
    """Decodings over a regular grid of the 2-D latent space (Higgins Fig. 6, right)."""
    grid = np.linspace(-span, span, steps)
    z0, z1 = np.meshgrid(grid, grid[::-1])  # z1 grows upwards, as on the scatter plots
    z = np.stack([z0.ravel(), z1.ravel()], axis=1)
    images = decode(model, z, tuple(sim.observation_shape))
    fig = new_figure(0.6 * steps + 1, 0.6 * steps + 1)
    ax = fig.subplots()
    _show(ax, _mosaic(images, steps, steps))
    ax.set_axis_off()
    kind = f"decoded grid, z0 → right, z1 ↑ (±{span:g})"
    ax.set_title(figure_title(title, kind, _name(sim), fig), fontsize=9)
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
    """Every per-run figure this run's model can make, each titled with what the run is, and
    a message for any other figure (why it was skipped) or anything a figure warns about."""
    training = record.get("training") if isinstance(record.get("training"), dict) else {}
    kl = training.get("kl_per_dim")
    finite = isinstance(kl, list) and all(isinstance(k, (int, float)) for k in kl)
    kl = kl if finite and kl and all(math.isfinite(k) for k in kl) else None
    title = run_title(record)
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
    decodes = decoder_of(model) is not None
    if decodes:
        kwargs = {"span": span, "steps": steps, "seed": seed, "title": title}
        figures["traversals"] = latent_traversals(model, sim, kl, **kwargs)
        skipped += [note for note in [collapse_note(kl)] if note]
    else:
        skipped.append(
            f"latent traversals skipped: model {name!r} has no decode(z) (dbench.contracts.Decoder)"
        )
    dim = getattr(model, "latent_dim", None)
    if dim is None:
        dim = encode(model, sim, sim.sample_factors(2, np.random.default_rng(seed))).shape[1]
    if dim == 2:
        figures["latent_space"] = latent_space_2d(model, sim, seed=seed, title=title)
        if decodes:
            grid = {"span": span, "steps": steps, "title": title}
            figures["latent_grid"] = traversal_grid_2d(model, sim, **grid)
    else:
        skipped.append(f"2-D latent space plots skipped: the representation has {dim} dimensions")
    return figures, skipped
