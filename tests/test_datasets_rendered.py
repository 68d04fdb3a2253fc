"""Blobs, 3D faces, 3dshapes and the dSprites variants beyond the generic contract: tables and
caches agree with ``sim``, real-file loaders read small files in the documented layouts and
reject broken ones with one-line errors, nuisances behave, and the ``data`` CLI commands work.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dbench.cli import app
from dbench.datasets import shapes3d_render
from dbench.datasets.blobs import Blobs
from dbench.datasets.dsprites_variants import ColorDSprites, NoisyDSprites
from dbench.datasets.faces3d import Faces3D
from dbench.datasets.files import sha256_file
from dbench.datasets.shapes3d import Shapes3D
from dbench.errors import UserError
from tests._datasets import table_matches_sim

TINY_FACES = {"n_identities": 2, "n_azimuth": 3, "n_elevation": 2, "n_lighting": 2}


# -- blobs -------------------------------------------------------------------------------------


def test_blob_moves_with_its_factors(tmp_path):
    b = Blobs(data_dir=tmp_path)
    x = b.sim(np.array([[16, 0], [16, 31], [0, 16]]))[:, 0]
    rows, cols = x.sum(2).argmax(1), x.sum(1).argmax(1)
    assert rows[0] < rows[1] and cols[2] < cols[0]  # posY moves down, posX moves right
    assert not b.binary and b.describe()["settings"]["sigma"] == 3.0


def test_blobs_table_cache_and_settings(tmp_path):
    b = Blobs(grid=8, sigma=2.0, data_dir=tmp_path)
    assert b.num_observations == 64
    table = table_matches_sim(b, np.arange(64))
    assert table.data.dtype == torch.uint8 and table.data.shape == (64, 4096)
    path = b.prepare(progress=False)
    assert path.parent == tmp_path / "cache" and b.cache_state().startswith("ready")
    assert torch.equal(b.compact_table().data, table.data)
    assert Blobs(grid=8, sigma=2.5).describe()["checksum"] != b.describe()["checksum"]
    with pytest.raises(UserError):
        Blobs(sigma=0)


# -- 3D faces ----------------------------------------------------------------------------------


def test_procedural_faces_lighting_and_pose_change_the_image(tmp_path):
    f = Faces3D(source="procedural", data_dir=tmp_path, **TINY_FACES)
    assert f.factor_sizes == (2, 3, 2, 2) and f.describe()["source"] == "procedural"
    x = f.sim(np.array([[0, 1, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [1, 1, 0, 0]]))
    assert x[0].mean() > 0.05  # a lit head, not an empty frame
    for other in x[1:]:
        assert (other - x[0]).abs().mean() > 0.005
    # Background stays black: the head is framed, not filling the image.
    assert float(x[:, :, :, :2].max()) < 0.05 or float(x[:, :, :2].max()) < 0.05


def test_procedural_faces_table_and_prepare(tmp_path):
    f = Faces3D(source="procedural", data_dir=tmp_path, **TINY_FACES)
    table = table_matches_sim(f, np.arange(f.num_observations))
    path = f.prepare(progress=False)
    again = Faces3D(source="procedural", data_dir=tmp_path, **TINY_FACES)
    assert again.cache_state() == f"ready: {path}"
    assert torch.equal(again.compact_table().data, table.data)


def _faces_file(path, sizes=(2, 3, 2, 2), order_ok=True):
    n = int(np.prod(sizes))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 64, 64), dtype=np.uint8)
    labels = np.stack(np.unravel_index(np.arange(n), sizes), 1)
    if not order_ok:
        labels = labels[::-1]
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["labels"] = labels
    return images


def test_faces_file_source(tmp_path):
    images = _faces_file(tmp_path / "faces3d.h5")
    f = Faces3D(data_dir=tmp_path)  # auto finds the file
    assert f.describe()["source"] == "file:faces3d.h5"
    assert f.describe()["checksum"] == f"sha256:{sha256_file(tmp_path / 'faces3d.h5')}"
    assert f.factor_sizes == (2, 3, 2, 2)
    v = np.array([[1, 2, 1, 0], [0, 0, 0, 1]])
    expected = torch.from_numpy(images[f.index_of(v)]).float()[:, None] / 255
    assert torch.equal(f.sim(v), expected)
    table_matches_sim(f, np.arange(24))
    with pytest.raises(UserError, match="nothing to prepare"):
        f.prepare()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f.__delitem__("labels"), "no 'labels' dataset"),
        (
            lambda f: (f.__delitem__("images"), f.create_dataset("images", (24, 64, 64), "f4")),
            "must be uint8",
        ),
    ],
)
def test_faces_file_errors_are_one_line(tmp_path, mutate, message):
    path = tmp_path / "faces3d.h5"
    _faces_file(path)
    with h5py.File(path, "a") as f:
        mutate(f)
    with pytest.raises(UserError, match=message) as err:
        Faces3D(source="file", data_dir=tmp_path)
    assert "\n" not in str(err.value)


def test_faces_file_order_and_absence(tmp_path):
    _faces_file(tmp_path / "faces3d.h5", order_ok=False)
    with pytest.raises(UserError, match="row-major"):
        Faces3D(data_dir=tmp_path)
    with pytest.raises(UserError, match="no file"):
        Faces3D(source="file", data_dir=tmp_path / "empty")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(UserError, match="not a readable HDF5"):
        Faces3D(source="file", path=str(tmp_path / "junk.h5"))


# -- 3dshapes ----------------------------------------------------------------------------------


def test_shapes3d_factoredtable_matches_sim(tmp_path, monkeypatch):
    # The 480 real traces take minutes on a shared CPU; a cheap stand-in per geometry checks
    # the table's composition and decoding, which is what this test is about.
    def fake_trace(shape, scale, orient, p):
        g = (shape * 100 + scale * 10 + orient).float()
        return (
            torch.sigmoid(
                g[:, None, None, None] * torch.linspace(-1, 1, 3)[None, :, None, None]
            ).expand(-1, 3, 64, 64)
            / 3
        )

    monkeypatch.setattr(shapes3d_render, "trace_weights", fake_trace)
    s = Shapes3D(source="procedural", data_dir=tmp_path)
    table = table_matches_sim(s, np.random.default_rng(0).integers(0, 480_000, 64))
    assert table.data.shape == (480_000,) and table.data.element_size() == 4


def test_shapes3d_hues_and_shape_change_the_image(tmp_path):
    s = Shapes3D(source="procedural", data_dir=tmp_path)
    base = np.array([0, 5, 2, 3, 0, 7])
    v = np.stack([base, base + [3, 0, 0, 0, 0, 0], base + [0, 0, 0, 0, 2, 0]])
    x = s.sim(v)
    assert (x[1] - x[0]).abs().mean() > 0.02 and (x[2] - x[0]).abs().mean() > 0.005
    # The floor hue only recolours the floor: the top rows (wall) stay identical.
    assert torch.equal(x[0, :, :8], x[1, :, :8])


def _shapes_file(path, sizes=(2, 2, 2, 2, 2, 2)):
    n = int(np.prod(sizes))
    classes = np.stack(np.unravel_index(np.arange(n), sizes), 1)
    values = [
        np.linspace(0, 0.9, 10),
        np.linspace(0, 0.9, 10),
        np.linspace(0, 0.9, 10),
        np.linspace(0.75, 1.25, 8),
        np.arange(4.0),
        np.linspace(-30, 30, 15),
    ]
    labels = np.stack([values[k][classes[:, k]] for k in range(6)], 1)
    images = np.random.default_rng(1).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["labels"] = labels.astype(np.float64)
    return images


def test_shapes3d_file_source(tmp_path):
    images = _shapes_file(tmp_path / "3dshapes.h5")
    s = Shapes3D(data_dir=tmp_path)
    assert s.describe()["source"] == "file:3dshapes.h5" and s.factor_sizes == (2,) * 6
    assert s.describe()["settings"]["values"][5] == [-30.0, -25.714285714285715]
    v = np.array([[1, 0, 1, 0, 1, 1], [0, 0, 0, 0, 0, 0], [1, 0, 1, 0, 1, 1]])
    expected = torch.from_numpy(images[s.index_of(v)]).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(s.sim(v), expected)
    table_matches_sim(s, np.arange(64))


# -- dSprites variants -------------------------------------------------------------------------


def test_color_dsprites_paints_the_sprite(tmp_path):
    c = ColorDSprites(data_dir=tmp_path, source="procedural")
    v = np.array([[0, 5, 0, 16, 16]] * 2)
    w = np.array([[1.0, 0.5, 0.75], [0.5, 1.0, 1.0]])
    x = c.sim(v, w)
    sprite = c.base.sim(v[:1])[0, 0] > 0
    for i in range(2):
        for ch in range(3):
            assert torch.allclose(x[i, ch][sprite], torch.tensor(w[i, ch], dtype=torch.float32))
        assert float(x[i][:, ~sprite].max()) == 0.0
    drawn = c.sample_nuisance(1000, np.random.default_rng(0))
    assert drawn.min() >= 0.5 and drawn.max() <= 1.0
    assert torch.equal(c.sim(v[:1]), c.sim(v[:1]))  # w=None: fixed per factor vector


def test_noisy_dsprites_noise_background(tmp_path):
    d = NoisyDSprites(data_dir=tmp_path, source="procedural")
    v = np.array([[1, 5, 0, 16, 16]])
    x = d.sim(v, np.array([7]))
    sprite = d.base.sim(v)[0, 0] > 0
    assert float(x[0][:, sprite].min()) == 1.0
    background = x[0][:, ~sprite]
    assert 0.45 < float(background.mean()) < 0.55 and float(background.std()) > 0.25
    assert not torch.equal(x, d.sim(v, np.array([8])))
    assert d.compact_table() is None and d.describe()["checksum"].endswith("+noisy-v1")


# -- CLI ---------------------------------------------------------------------------------------


def test_data_info_prepare_show(tmp_path):
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path)]
    result = runner.invoke(app, ["data", "info", "blobs", *args])
    assert result.exit_code == 0, result.output
    assert "posX (32), posY (32)" in result.output and "absent" in result.output
    result = runner.invoke(app, ["data", "prepare", "blobs", "--no-progress", *args])
    assert result.exit_code == 0, result.output
    assert "ready" in runner.invoke(app, ["data", "info", "blobs", *args]).output
    out = tmp_path / "blobs.png"
    result = runner.invoke(app, ["data", "show", "blobs", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = runner.invoke(app, ["data", "info", "blobz", *args])
    assert isinstance(result.exception, UserError)  # main() prints it as one line, exit 2
    assert "did you mean 'blobs'" in str(result.exception)
