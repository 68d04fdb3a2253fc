"""Datasets read from their published files: MPI3D, SmallNORB, Cars3D and scream-dSprites.

Loaders are tested on small files written here in the published formats (a few hundred
images; the modules' size constants are lowered to match), plus the one-line errors for
missing, truncated or different files, and the procedural stand-ins where a dataset has one.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dbench.datasets import cars3d, mpi3d, smallnorb
from dbench.datasets.files import MissingData, resize_lanczos
from dbench.errors import UserError
from dbench.registry import DATASETS
from dbench.testing import assert_passed, check_dataset
from tests._datasets import one_line, sha, table_matches_sim

FILE_DATASETS = (
    "mpi3d_toy",
    "mpi3d_realistic",
    "mpi3d_real",
    "smallnorb",
    "cars3d",
    "dsprites_scream",
)


def test_the_file_datasets_are_registered():
    assert set(FILE_DATASETS) | {"arrays"} <= set(DATASETS.names())


# -- MPI3D ------------------------------------------------------------------------------------

TINY = (2, 2, 2, 3, 1, 2, 2)  # 96 rows: the real layout's seven factors, a few values each


def test_release_is_read_from_the_array_length():
    assert mpi3d.release_of(1_036_800)[1] == (6, 6, 2, 3, 3, 40, 40)
    assert mpi3d.release_of(460_800)[1] == (4, 4, 2, 3, 3, 40, 40)
    assert mpi3d.release_of(460_800)[0].startswith("4x4")
    with pytest.raises(UserError) as exc:
        mpi3d.release_of(1_000_000, "mpi3d_toy", "x.npz")
    assert "1,036,800" in one_line(exc) and "460,800" in str(exc.value)


@pytest.fixture
def tiny_release(monkeypatch):
    n = int(np.prod(TINY))
    monkeypatch.setitem(mpi3d.RELEASES, n, ("tiny", TINY, ("a", "b"), ("c", "d")))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n)  # each row says which it is
    return images


@pytest.mark.parametrize("compressed", [False, True])
def test_mpi3d_reads_the_published_layout_by_row(tmp_path, tiny_release, compressed):
    path = tmp_path / "mpi3d_toy.npz"
    (np.savez_compressed if compressed else np.savez)(path, images=tiny_release)
    sim = DATASETS.create("mpi3d_toy", data_dir=str(tmp_path))
    assert sim.source == "file:mpi3d_toy.npz" and sim.factor_sizes == TINY
    assert isinstance(sim._images, np.memmap) != compressed  # mapped unless deflated
    v = sim.sample_factors(20, np.random.default_rng(1))
    x = sim.sim(v)
    want = torch.from_numpy(tiny_release[sim.index_of(v)]).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(x, want)
    info = sim.describe()
    assert info["checksum"] == sha(path) and info["release"] == "tiny"
    assert_passed(check_dataset(sim))


def test_mpi3d_file_errors_are_one_line(tmp_path, tiny_release):
    with pytest.raises(MissingData) as exc:
        DATASETS.create("mpi3d_real", data_dir=str(tmp_path))
    assert "mpi3d_real.npz" in one_line(exc)
    bad = tmp_path / "mpi3d_realistic.npz"
    np.savez(bad, images=tiny_release[:95])
    with pytest.raises(UserError, match="holds 95 images") as exc:
        DATASETS.create("mpi3d_realistic", data_dir=str(tmp_path))
    one_line(exc)
    np.savez(bad, images=tiny_release)
    with open(bad, "r+b") as fh:  # cut the file inside the images member
        fh.truncate(bad.stat().st_size // 2)
    with pytest.raises(UserError) as exc:
        DATASETS.create("mpi3d_realistic", data_dir=str(tmp_path))
    one_line(exc)


def test_mpi3d_toy_stand_in_renders_the_scene():
    sim = DATASETS.create("mpi3d_toy")
    assert sim.source == "procedural" and sim.factor_sizes == (6, 6, 2, 3, 3, 40, 40)
    v = np.array([[2, 1, 1, 0, 0, 20, 20]] * 4)
    v[1, 4], v[2, 3], v[3, 0] = 1, 2, 3  # background colour, camera height, object colour
    x = sim.sim(v)
    assert x.shape == (4, 3, 64, 64) and x.dtype == torch.float32
    assert torch.equal(x, sim.sim(v))
    mixed = np.concatenate([v[2:3], sim.sample_factors(20, np.random.default_rng(0))])
    assert torch.equal(sim.sim(mixed)[:1], x[2:3])  # an image does not depend on its batch
    for i in (1, 2, 3):
        assert (x[i] - x[0]).abs().amax() > 0.2  # each factor changes the image visibly
    assert x[0, 0].mean() < 0.35  # a dark floor, like the published renders
    assert sim.describe()["checksum"].startswith("mpi3d-toy-arm-v1:")


# -- SmallNORB --------------------------------------------------------------------------------

NORB = {"cat": 2, "elev": 3, "azim": 4, "light": 2}  # x 2 instances per split: 96 rows each


def write_norb(folder: Path, split: str, instances: tuple[int, ...]) -> np.ndarray:
    """One split in the published binary matrix format; returns its 96x96 camera-0 images."""
    grid = np.stack(
        np.meshgrid(*(np.arange(n) for n in NORB.values()), np.asarray(instances), indexing="ij"),
        -1,
    ).reshape(-1, 5)
    rows = len(grid)
    rng = np.random.default_rng(len(instances) + instances[0])
    dat = rng.integers(0, 256, size=(rows, 2, 96, 96), dtype=np.uint8)
    cat = grid[:, 0].astype(np.int32)
    info = np.column_stack([grid[:, 4], grid[:, 1], 2 * grid[:, 2], grid[:, 3]]).astype(np.int32)
    folder.mkdir(exist_ok=True)
    for kind, magic, data in (
        ("dat", 0x1E3D4C55, dat),
        ("cat", 0x1E3D4C54, cat),
        ("info", 0x1E3D4C54, info),
    ):
        dims = list(data.shape) + [1] * max(0, 3 - data.ndim)
        header = np.asarray([magic, data.ndim, *dims], dtype="<i4").tobytes()
        (folder / f"smallnorb-{split}-{kind}.mat").write_bytes(header + data.tobytes())
    return dat[:, 0], grid


@pytest.fixture
def norb_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(smallnorb, "ROWS", 96)
    folder = tmp_path / "smallnorb"
    train, train_grid = write_norb(folder, smallnorb.SPLITS[0], (1, 3))
    test, test_grid = write_norb(folder, smallnorb.SPLITS[1], (0, 2))
    return folder, np.concatenate([train, test]), np.concatenate([train_grid, test_grid])


def test_smallnorb_reads_both_splits_with_the_instance_as_nuisance(norb_folder):
    folder, images, grid = norb_folder
    sim = DATASETS.create("smallnorb", data_dir=str(folder.parent))
    assert sim.factor_sizes == (2, 3, 4, 2) and sim.n_instances == 4
    # the row for category 1, elevation 2, azimuth 3 (file value 6), lighting 0, instance 2
    row = np.flatnonzero((grid == [1, 2, 3, 0, 2]).all(1))[0]
    x = sim.sim(np.array([[1, 2, 3, 0]]), np.array([2]))
    want = resize_lanczos(images[row : row + 1])[0] / 255.0
    assert x.shape == (1, 1, 64, 64) and np.allclose(x[0, 0].numpy(), want, atol=1e-6)
    assert_passed(check_dataset(sim))
    assert sim.describe()["checksum"].startswith("sha256:")


def test_smallnorb_errors_name_the_files(norb_folder, tmp_path):
    folder, _, _ = norb_folder
    with pytest.raises(MissingData) as exc:
        DATASETS.create("smallnorb", data_dir=str(tmp_path / "elsewhere"))
    assert "smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat" in one_line(exc)
    cat = folder / f"smallnorb-{smallnorb.SPLITS[1]}-cat.mat"
    cat.write_bytes(cat.read_bytes()[:-4])
    with pytest.raises(UserError, match="bytes; the published file is") as exc:
        DATASETS.create("smallnorb", data_dir=str(tmp_path))
    one_line(exc)


def test_smallnorb_known_sizes_are_the_published_ones():
    assert smallnorb.expected_bytes("dat", 24_300) == 447_897_624
    assert smallnorb.expected_bytes("cat", 24_300) == 97_220
    assert smallnorb.expected_bytes("info", 24_300) == 388_820


# -- Cars3D -----------------------------------------------------------------------------------


@pytest.fixture
def cars_folder(tmp_path, monkeypatch):
    import scipy.io

    monkeypatch.setattr(cars3d, "N_MODELS", 3)
    folder = tmp_path / "cars"
    folder.mkdir()
    meshes = []
    for k in range(3):  # 3 models x 96 views = 288 images
        im = np.random.default_rng(k).integers(0, 256, size=cars3d.MESH_SHAPE, dtype=np.uint8)
        scipy.io.savemat(folder / f"car_{k + 1:03d}_mesh.mat", {"im": im})
        meshes.append(im)
    return folder, meshes


def test_cars3d_reads_elevation_azimuth_model(cars_folder):
    folder, meshes = cars_folder
    sim = DATASETS.create("cars3d", data_dir=str(folder.parent))
    assert sim.factor_sizes == (4, 24, 3)
    x = sim.sim(np.array([[3, 5, 1]]))  # elevation 3, azimuth 5, model 1
    want = resize_lanczos(meshes[1][None, :, :, :, 5, 3])[0].transpose(2, 0, 1) / 255.0
    assert np.allclose(x[0].numpy(), want, atol=1e-6)
    v = sim.sample_factors(8, np.random.default_rng(0))
    table_matches_sim(sim, sim.index_of(v))
    assert_passed(check_dataset(sim))


def test_cars3d_errors_are_one_line(cars_folder, tmp_path):
    folder, _ = cars_folder
    with pytest.raises(MissingData) as exc:
        DATASETS.create("cars3d", data_dir=str(tmp_path / "elsewhere"))
    assert "car_001_mesh.mat" in one_line(exc)
    (folder / "car_004_mesh.mat").write_bytes(b"")
    with pytest.raises(UserError, match="holds 4 .mat files") as exc:
        DATASETS.create("cars3d", data_dir=str(tmp_path))
    one_line(exc)
    import scipy.io

    (folder / "car_004_mesh.mat").unlink()
    scipy.io.savemat(folder / "car_002_mesh.mat", {"im": np.zeros((64, 64, 3), np.uint8)})
    with pytest.raises(UserError, match="car_002_mesh.mat: expected 'im' uint8") as exc:
        DATASETS.create("cars3d", data_dir=str(tmp_path)).sim(np.array([[0, 0, 0]]))
    one_line(exc)


# -- scream-dSprites --------------------------------------------------------------------------


def test_scream_draws_the_sprite_inverted_over_a_shifted_crop(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    painting = rng.integers(0, 256, size=(250, 300, 3), dtype=np.uint8)
    Image.fromarray(painting).save(tmp_path / "scream.png")
    sim = DATASETS.create(
        "dsprites_scream", data_dir=str(tmp_path), background=str(tmp_path / "scream.png")
    )
    info = sim.describe()["background"]
    assert info["source"] == "file:scream.png" and info["checksum"] == sha(tmp_path / "scream.png")
    v = sim.sample_factors(3, rng)
    w = sim.sample_nuisance(3, rng)
    x = sim.sim(v, w)
    # thumbnail((350, 274)) keeps 300 x 250 (it only shrinks); crops start below 250 - 64
    bg = torch.from_numpy(painting / 255.0).float()
    sprite = sim.base.sim(v)
    for i in range(3):
        r, c = int(w[i, 0]), int(w[i, 1])
        back = (
            bg[r : r + 64, c : c + 64].permute(2, 0, 1)
            + torch.tensor(w[i, 2:]).float()[:, None, None]
        ) / 2
        want = torch.where(sprite[i] > 0.5, 1 - back, back)
        assert torch.allclose(x[i], want, atol=1e-6)
    with pytest.raises(UserError, match="nuisance must be"):
        sim.sim(v, w[:, :3])


def test_scream_stand_in_is_a_painterly_texture():
    from dbench.datasets.dsprites_scream import painterly

    sim = DATASETS.create("dsprites_scream")
    assert sim.describe()["background"]["source"] == "procedural"
    texture = painterly(0)
    assert texture.shape == (274, 221, 3) and np.array_equal(texture, painterly(0))
    sky, land = texture[:80].mean((0, 1)), texture[150:200, 110:].mean((0, 1))
    assert sky[0] > sky[2] and land[2] > land[0]  # warm sky above, blue land below
    v = sim.sample_factors(2, np.random.default_rng(0))
    assert torch.equal(sim.sim(v), sim.sim(v))  # w=None: a fixed crop per factor vector


def test_missing_files_fail_the_cli_in_one_line(tmp_path, monkeypatch, capsys):
    from dbench.cli import main

    for name, expected in (("smallnorb", "smallnorb-5x01235"), ("cars3d", "car_001_mesh.mat")):
        args = ["dbench", "run", "--model", "pca", "--dataset", name, "--data-dir", str(tmp_path)]
        monkeypatch.setattr("sys.argv", args)
        with pytest.raises(SystemExit) as exc:
            main()
        err = capsys.readouterr().err
        assert exc.value.code == 2 and expected in err and err.strip().count("\n") == 0


def test_npz_members_map_only_when_stored(tmp_path):
    from dbench.datasets.files import npz_memmap

    a = np.arange(600, dtype=np.uint8).reshape(6, 100)
    np.savez(tmp_path / "s.npz", a=a)
    np.savez_compressed(tmp_path / "c.npz", a=a)
    assert np.array_equal(npz_memmap(tmp_path / "s.npz", "a"), a)
    assert npz_memmap(tmp_path / "c.npz", "a") is None
    with zipfile.ZipFile(tmp_path / "s.npz") as zf:
        assert zf.getinfo("a.npy").compress_type == zipfile.ZIP_STORED
