"""The EMNIST letters experiment: the loader (gzip IDX, .mat, the stand-in), the labelled
dataset's sampling, the ``mlp`` architecture, beta = 0, the ``levy2020`` preset and the 2-D
figures of a tiny run."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from dbench.errors import UserError
from dbench.models.nets import MLP_HIDDEN, build_nets, mlp_hidden

pytestmark = pytest.mark.usefixtures("one_thread")


def _letters(**kwargs):
    from dbench.datasets.emnist import EMNISTLetters

    return EMNISTLetters(**kwargs)


def _upright(n: int, seed: int) -> np.ndarray:
    """Asymmetric images (a bar on the left half) so a transposition would show."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 100, size=(n, 28, 28), dtype=np.uint8)
    x[:, :, :4] = 255
    return x


def _bytes(x: torch.Tensor) -> np.ndarray:
    return x.mul(255).round().to(torch.uint8).numpy()


def _write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + np.ascontiguousarray(array).tobytes())


LABELS = {"train": np.array([1, 2, 3, 1, 2, 3, 26]), "test": np.array([1, 2, 3, 26])}


def _write_gzip(root) -> dict[str, np.ndarray]:
    """The published gzip layout (images stored transposed, labels 1..26)."""
    (root / "gzip").mkdir()
    images = {}
    for split, labels in LABELS.items():
        images[split] = _upright(len(labels), len(labels))
        stem = root / "gzip" / f"emnist-letters-{split}"
        _write_idx(f"{stem}-images-idx3-ubyte.gz", images[split].transpose(0, 2, 1))
        _write_idx(f"{stem}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return images


# -- the loader -----------------------------------------------------------------------------------


def test_gzip_idx_files_are_read_upright_with_letters_as_the_factor(tmp_path):
    images = _write_gzip(tmp_path)
    data = _letters(data_dir=str(tmp_path))
    assert data.letters == "ABCZ" and data.factor_sizes == (4,)
    assert data.describe()["source"] == "file:emnist-letters-train-images-idx3-ubyte.gz"
    assert data.describe()["checksum"].startswith("sha256:")
    v = np.array([[0], [1], [2], [3]])
    x = data.sim(v, np.zeros(4))  # w = 0: the first image of each letter, in file order
    assert np.array_equal(_bytes(x[:, 0]), images["train"][[0, 1, 2, 6]])
    sub = _letters(data_dir=str(tmp_path), letters="ab")
    assert sub.letters == "AB"
    assert set(sub.sample_factors(200, np.random.default_rng(0))[:, 0]) == {0, 1}
    test = sub.held_out()
    assert test.split == "test" and len(test._images) == 2
    assert np.array_equal(_bytes(test.sim(np.array([[1]]))[0, 0]), images["test"][1])


def test_the_mat_file_reads_like_the_gzip_files(tmp_path):
    import scipy.io

    (tmp_path / "g").mkdir()
    images = _write_gzip(tmp_path / "g")
    parts = {
        split: {
            "images": images[split].transpose(0, 2, 1).reshape(len(labels), -1),
            "labels": labels[:, None].astype(np.float64),
        }
        for split, labels in LABELS.items()
    }
    (tmp_path / "m").mkdir()
    scipy.io.savemat(tmp_path / "m" / "emnist-letters.mat", {"dataset": parts})
    from_mat = _letters(data_dir=str(tmp_path / "m"), source="file")
    from_gzip = _letters(data_dir=str(tmp_path / "g"))
    assert from_mat.describe()["source"] == "file:emnist-letters.mat"
    assert np.array_equal(from_mat._images, from_gzip._images)
    assert np.array_equal(from_mat._classes, from_gzip._classes)


def test_missing_or_broken_files_are_one_line(tmp_path):
    with pytest.raises(UserError, match="no EMNIST letters train files") as err:
        _letters(data_dir=str(tmp_path), source="file")
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="stand-in has only A-D"):
        _letters(data_dir=str(tmp_path), letters="ABE")
    with pytest.raises(UserError, match="distinct letters"):
        _letters(letters="A1")
    (tmp_path / "emnist-letters-train-images-idx3-ubyte.gz").write_bytes(b"junk")
    (tmp_path / "emnist-letters-train-labels-idx1-ubyte.gz").write_bytes(b"junk")
    with pytest.raises(UserError, match="cannot read"):
        _letters(data_dir=str(tmp_path))


# -- the stand-in and the labelled sampling -------------------------------------------------------


def test_standin_is_digits_0_to_3_named_as_such():
    data = _letters()
    info = data.describe()
    assert "stand-in" in info["source"] and "scikit-learn digits" in info["source"]
    assert data.letters == "ABCD" and data.observation_shape == (1, 28, 28)
    counts = info["images_per_letter"]
    assert set(counts) == set("ABCD") and min(counts.values()) > 100
    held = data.held_out()
    assert held.split == "test" and 100 < len(held._images) < len(data._images)
    assert info["checksum"] != held.describe()["checksum"]


def test_factors_are_letters_images_share_them_and_the_table_matches_sim():
    data = _letters(letters="BD")
    rng = np.random.default_rng(0)
    v = data.sample_factors(400, rng)
    assert v.shape == (400, 1) and set(v[:, 0]) == {0, 1}
    w = data.sample_nuisance(400, rng)
    rows = data._rows.rows_for(v, w)
    assert np.array_equal(data._classes[rows], v[:, 0])  # every image has the asked letter
    table = data.compact_table()
    want = data.sim(v, w)
    assert torch.equal(table.decode(table.data[torch.from_numpy(rows)]), want)
    fixed = data.sample_sharing(np.zeros(50, dtype=int), np.ones(50, dtype=int), rng)
    assert (fixed[:, 0] == 1).all()


# -- the mlp architecture and beta = 0 ------------------------------------------------------------


def test_mlp_architecture_for_any_image_size():
    enc, dec = build_nets("mlp", (1, 28, 28), 2)
    linears = [m for m in enc.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 512), (512, 4)]
    assert dec(enc(torch.rand(3, 1, 28, 28))[:, :2]).shape == (3, 1, 28, 28)
    enc, dec = build_nets("mlp", (3, 10, 6), 5, hidden=[64, 32])
    sizes = [m.out_features for m in dec.net if isinstance(m, torch.nn.Linear)]
    assert sizes == [32, 64, 180] and enc(torch.rand(2, 3, 10, 6)).shape == (2, 10)
    assert mlp_hidden(None) == MLP_HIDDEN == (512,)
    assert mlp_hidden("512,256") == mlp_hidden([512, 256]) == (512, 256) and mlp_hidden(8) == (8,)
    with pytest.raises(UserError, match="positive layer widths"):
        mlp_hidden([512, 0])
    with pytest.raises(UserError, match="arch 'mlp' only"):
        build_nets("burgess", (1, 64, 64), 2, hidden=(8,))


def test_beta_zero_is_a_valid_betavae_and_trains_on_letters():
    from dbench.contracts import Budget, FitContext
    from dbench.models.vae_family import BetaVAE

    model = BetaVAE(beta=0, latent_dim=2, arch="mlp", lr=1e-3)
    model.fit(
        _letters(), np.random.default_rng(0), FitContext(budget=Budget(3, 16))
    )
    assert model.fit_info_["beta"] == 0 and model.fit_info_["arch"] == "mlp"


# -- the preset and the figures -------------------------------------------------------------------


def test_levy2020_preset_runs_beta_0_1_5_with_the_reports_budget():
    from dbench.sweep.plan import expand
    from dbench.sweep.presets import load_preset, preset_requests

    plans = expand(preset_requests(load_preset("levy2020")))
    configs = [p.config for p in plans]
    assert sorted({c.model_kwargs["beta"] for c in configs}) == [0, 1, 5]
    assert len(configs) == 9 and {c.seed for c in configs} == {0, 1, 2}
    for c in configs:
        assert c.model == "betavae" and c.dataset == "emnist_letters"
        assert {k: c.model_kwargs[k] for k in ("latent_dim", "arch", "lr")} == {
            "latent_dim": 2,
            "arch": "mlp",
            "lr": 0.001,
        }
        assert c.dataset_kwargs == {"letters": "ABCD"}
        assert (c.budget.steps, c.budget.batch_size) == (1125, 256)


def test_a_tiny_2d_run_draws_the_latent_scatter_and_the_grid(tmp_path):
    from dbench.contracts import Budget
    from dbench.engine.config import RunConfig
    from dbench.engine.run import run_one
    from dbench.reporting.plots import run_figures

    config = RunConfig(
        model="betavae",
        dataset="emnist_letters",
        model_kwargs={"beta": 1, "latent_dim": 2, "arch": "mlp"},
        dataset_kwargs={"letters": "ABCD"},
        metrics=["mig"],
        settings={"mig.fast": True},
        budget=Budget(4, 32),
        results_dir=str(tmp_path),
    )
    record = run_one(config)
    assert "stand-in" in record["dataset"]["source"]
    figures, skipped = run_figures(record, tmp_path, span=4.0, steps=5)
    assert {"latent_space", "latent_grid", "traversals"} <= set(figures)
