"""One figure for several 2-D runs: a row per run, the latent map of held-out images next to
the decoded grid (the source report's Figure 6, after Higgins et al. 2017, Fig. 6).

``dbench show RUN1 RUN2 ...`` (or ``--preset NAME``) draws it. Each row:

- left, the mean encodings of held-out images coloured by class with a categorical palette
  and a legend naming the classes (``sim.class_names`` when the dataset has them: the letters
  of ``emnist_letters``). Held out means the dataset's test split, from its ``held_out()``
  method; a dataset without one is drawn from its training images, and the figure says so.
  When the dataset describes its images per class (``describe()["images_per_letter"]``) every
  held-out image is encoded once (up to ``limit``); otherwise ``limit`` images are drawn with
  the dataset's own sampler. A dashed square marks the part of the plane the grid decodes;
- right, the decodings of a regular grid over ``±span`` on both latents, z0 to the right and
  z1 upwards, as on the scatter.

Rows keep the order given; the title says what the run is (its label) and its id. A run whose
representation is not 2-D, or whose model cannot decode, is a one-line error.

``dbench show RUN`` on an ``evaluate`` record (no model state: an outside encoder or saved
codes) draws the latent map from the codes the run scored, when they are 2-D
(:func:`codes_figures`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dbench.errors import UserError
from dbench.reporting.plots import _mosaic, _show, decode, decoder_of, load_run, new_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: at most this many held-out images per scatter
LIMIT = 4000


def held_out_data(sim: Any) -> tuple[Any, str]:
    """The dataset's held-out split (``sim.held_out()``) and words for it; the training data
    itself, said so, when the dataset has no such split."""
    method = getattr(sim, "held_out", None)
    if callable(method):
        return method(), "held-out images (test split)"
    return sim, "training images (the dataset has no held-out split)"


def _per_class_counts(sim: Any) -> list[int] | None:
    """Images per class, in class order, when the dataset describes them (one factor)."""
    counts = sim.describe().get("images_per_letter")
    names = getattr(sim, "class_names", None)
    if len(sim.factor_sizes) != 1 or not isinstance(counts, dict) or names is None:
        return None
    if list(counts) != list(names) or not all(isinstance(c, int) for c in counts.values()):
        return None
    return [int(counts[c]) for c in names]


def sample_images(sim: Any, limit: int = LIMIT, seed: int = 0) -> tuple[np.ndarray, Any]:
    """Factors and nuisance of the images to encode: every image once (evenly thinned to
    ``limit``) when the class sizes are known, else ``limit`` uniform draws."""
    counts = _per_class_counts(sim)
    rng = np.random.default_rng(seed)
    if counts is None:
        return sim.sample_factors(limit, rng), sim.sample_nuisance(limit, rng)
    keep = min(1.0, limit / max(1, sum(counts)))
    v, w = [], []
    for k, count in enumerate(counts):
        n = max(1, int(count * keep))
        # w in [0, 1) picks image floor(w * count) of class k: these pick n distinct images
        w.append((np.floor(np.arange(n) * count / n) + 0.5) / count)
        v.append(np.full(n, k, dtype=np.int64))
    return np.concatenate(v)[:, None], np.concatenate(w)


def encode_images(model: Any, sim: Any, v: np.ndarray, w: Any) -> np.ndarray:
    from dbench.contracts import Observations
    from dbench.reporting.plots import _numpy

    obs = Observations(factors=v, nuisance=w, _render=lambda: sim.sim(v, w))
    return _numpy(model.encode(obs)).reshape(len(v), -1)


def class_names(sim: Any, k: int) -> list[str]:
    """Names of factor ``k``'s values: the dataset's ``class_names`` or ``name=value``."""
    names = getattr(sim, "class_names", None)
    size = int(sim.factor_sizes[k])
    if names is not None and len(sim.factor_sizes) == 1 and len(names) == size:
        return [str(n) for n in names]
    return [f"{sim.factor_names[k]}={i}" for i in range(size)]


def run_label(record: dict[str, Any], others: list[dict[str, Any]]) -> str:
    """``model key=value ...``: the hyperparameters that differ among ``others`` (beta, when
    nothing differs and the model has one), and the seed when seeds differ."""
    config = record["config"]
    kwargs = config.get("model_kwargs") or {}
    keys = sorted(
        {k for r in others for k in (r["config"].get("model_kwargs") or {})},
        key=lambda k: (k != "beta", k),
    )
    differ = [
        k
        for k in keys
        if len({repr((r["config"].get("model_kwargs") or {}).get(k)) for r in others}) > 1
    ]
    if not differ and "beta" in kwargs:
        differ = ["beta"]
    text = " ".join([str(config["model"]), *(f"{k}={kwargs.get(k)}" for k in differ)])
    if len({r["config"].get("seed") for r in others}) > 1:
        text += f" seed={config.get('seed')}"
    return text


def _load_2d(record: dict[str, Any], results_dir: Any, data_dir: str | None) -> tuple[Any, Any]:
    run_id = record["run_id"]
    model, sim = load_run(record, results_dir, data_dir)
    dim = getattr(model, "latent_dim", None)
    if dim is None:
        v = sim.sample_factors(2, np.random.default_rng(0))
        dim = encode_images(model, sim, v, sim.sample_nuisance(2, np.random.default_rng(0))).shape[
            1
        ]
    if dim != 2:
        raise UserError(
            f"run {run_id} has a {dim}-D representation; the latent rows figure needs 2-D "
            "latents (train with --set latent_dim=2)"
        )
    if decoder_of(model) is None:
        raise UserError(
            f"run {run_id}: model {record['config']['model']!r} cannot decode "
            "(no decode(z)), so it has no traversal grid"
        )
    return model, sim


def _scatter(ax: Any, z: np.ndarray, classes: np.ndarray, names: list[str], what: str) -> None:
    from matplotlib import colormaps

    palette = colormaps["tab10" if len(names) <= 10 else "tab20"]
    for i, name in enumerate(names):
        hit = classes == i
        if hit.any():
            ax.scatter(
                z[hit, 0],
                z[hit, 1],
                s=5,
                alpha=0.7,
                color=palette(i % palette.N),
                label=name,
                linewidths=0,
            )
    ax.set_xlabel("z0")
    ax.set_ylabel("z1")
    ax.legend(
        title=what,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        title_fontsize=8,
        markerscale=3,
        frameon=False,
    )


def _grid(ax: Any, model: Any, sim: Any, span: float, steps: int) -> None:
    values = np.linspace(-span, span, steps)
    z0, z1 = np.meshgrid(values, values[::-1])  # z1 grows upwards, as on the scatter
    z = np.stack([z0.ravel(), z1.ravel()], axis=1)
    images = decode(model, z, tuple(sim.observation_shape))
    _show(ax, _mosaic(images, steps, steps))
    h, w = images.shape[2:]
    ends = [0, steps // 2, steps - 1]
    ax.set_xticks([k * (w + 2) + w / 2 for k in ends], [f"{values[k]:+g}" for k in ends])
    ax.set_yticks([k * (h + 2) + h / 2 for k in ends], [f"{values[::-1][k]:+g}" for k in ends])
    ax.set_xlabel("z0")
    ax.set_ylabel("z1")
    ax.tick_params(length=0, labelsize=8)
    for side in ax.spines.values():
        side.set_visible(False)


def latent_rows(
    rows: list[tuple[dict[str, Any], str]],
    results_dir: str | os.PathLike,
    data_dir: str | None = None,
    *,
    span: float = 4.0,
    steps: int = 9,
    limit: int = LIMIT,
    seed: int = 0,
) -> Figure:
    """One row per ``(record, label)``: held-out latent scatter | decoded grid over ``±span``.

    Every run is loaded and checked first, so a bad run fails before any drawing. The figure
    has exactly two axes per row.
    """
    if not rows:
        raise UserError("no runs to draw")
    loaded = [_load_2d(record, results_dir, data_dir) for record, _ in rows]
    fig = new_figure(8.6, 0.5 + 3.5 * len(rows))
    subfigs = np.atleast_1d(fig.subfigures(len(rows), 1))
    sources, held = set(), set()
    for sub, (record, label), (model, sim) in zip(subfigs, rows, loaded, strict=True):
        test, what = held_out_data(sim)
        v, w = sample_images(test, limit, seed)
        z = encode_images(model, test, v, w)
        k = next((i for i, s in enumerate(test.factor_sizes) if s > 1), 0)
        left, right = sub.subplots(1, 2, width_ratios=[1.25, 1.0])
        _scatter(left, z, v[:, k], class_names(test, k), str(test.factor_names[k]))
        left.add_patch(_square(span))
        left.set_title(f"{len(v)} {what}", fontsize=9)
        _grid(right, model, sim, span, steps)
        right.set_title(f"decoded grid over ±{span:g}", fontsize=9)
        sub.suptitle(f"{label}   [{record['run_id']}]", fontsize=10)
        sources.add(str((record.get("dataset") or {}).get("source", "?")))
        held.add(what)
    dataset = rows[0][0]["config"]["dataset"]
    words, data = " / ".join(sorted(held)), " | ".join(sorted(sources))
    fig.suptitle(f"{dataset}: 2-D latents of {words} | decoded grid\ndata: {data}", fontsize=10)
    return fig


def _square(span: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle(
        (-span, -span),
        2 * span,
        2 * span,
        fill=False,
        linestyle="--",
        linewidth=0.8,
        edgecolor="0.4",
        label="_grid",
    )


# -- an evaluate record's codes --------------------------------------------------------------
def scored_elsewhere(record: dict[str, Any]) -> bool:
    """Whether the run was scored by ``dbench evaluate`` and keeps no model state."""
    state = (record.get("model") or {}).get("state_file")
    return record.get("origin") == "evaluate" and not state


def codes_file(record: dict[str, Any], results_dir: Any, codes: Any = None) -> Path | None:
    """The codes the run scored: ``codes`` (refused with one line unless its sha256 prefix is
    the fingerprint ``evaluate --representations`` recorded), else a ``.npz`` with that
    fingerprint in the run's artifact folder (links are not followed), else None."""
    from dbench.engine.store import artifacts_dir

    run_id = record["run_id"]
    fingerprint = str((record.get("model") or {}).get("fingerprint") or "")

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    if codes is not None:
        path = Path(codes)
        if not path.is_file():
            raise UserError(f"no codes file {path}")
        if digest(path) != fingerprint:
            raise UserError(
                f"{path} is not the codes run {run_id} scored (sha256 {digest(path)}, the record "
                f"says {fingerprint!r}; runs of --encoder keep no codes)"
            )
        return path
    folder = artifacts_dir(Path(results_dir), run_id)
    found = sorted(folder.glob("*.npz")) if folder.is_dir() and not folder.is_symlink() else []
    return next((p for p in found if not p.is_symlink() and digest(p) == fingerprint), None)


def codes_figures(
    record: dict[str, Any],
    results_dir: Any,
    data_dir: str | None = None,
    codes: Any = None,
    *,
    seed: int = 0,
) -> tuple[dict[str, Figure], list[str]]:
    """The latent map of an ``evaluate`` record drawn from its codes (:func:`codes_file`) when
    they are 2-D, on the dataset the run recorded; else one message saying why not."""
    from types import SimpleNamespace

    from dbench.contracts import Observations
    from dbench.engine.codes import load_codes
    from dbench.engine.store import artifacts_dir
    from dbench.reporting.labels import run_title
    from dbench.reporting.plots import latent_space_2d, load_data

    run_id = record["run_id"]
    path = codes_file(record, results_dir, codes)
    if path is None:
        folder = artifacts_dir(Path(results_dir), run_id)
        return {}, [
            f"latent map skipped: run {run_id} was scored by dbench evaluate and keeps no model "
            f"state, and the codes it scored are not in {folder}: give them with --codes FILE.npz "
            "(a run of --encoder keeps no codes)"
        ]
    encode, sim, _ = load_codes(path, load_data(record, data_dir))
    v = sim.sample_factors(2, np.random.default_rng(seed))
    dim = np.asarray(encode(Observations(v, None, _render=lambda: sim.sim(v)))).shape[1]
    if dim != 2:
        return {}, [f"latent map skipped: the codes in {path} have {dim} dimensions, not 2"]
    model = SimpleNamespace(encode=encode)
    figure = latent_space_2d(model, sim, seed=seed, title=run_title(record))
    return {"latent_space": figure}, [f"codes: {path}"]
