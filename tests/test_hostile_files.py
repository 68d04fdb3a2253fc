"""Damaged and oversized data files (issue 27, round three): a member that fails its CRC even
when it is memory-mapped, an .npz whose few compressed bytes declare a huge array (a zip
bomb), and an HDF5 file whose damage shows only when a chunk is read. Each is one line,
before any allocation the file asks for.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dbench.errors import UserError
from tests._cli import cli, one_line_error


def _flip_byte_of(path: Path, value: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[raw.rindex(value)] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_a_memory_mapped_member_that_fails_its_crc_is_one_line(tmp_path, capsys):
    """np.savez stores members uncompressed, and dbench maps such images in place: the CRC
    that zipfile would check on reading has to be checked by dbench."""
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    images = rng.random((40, 8, 8)).astype(np.float32)
    images[-1, -1, -1] = 0.123456  # a recognisable byte pattern inside the images member
    np.savez(path, images=images, factors=np.repeat(np.arange(4.0), 10))
    _flip_byte_of(path, np.float32(0.123456).tobytes())
    code, _, err = cli(
        capsys, "run", "--model", "pca", "--dataset", "arrays", f"--set=dataset.path={path}",
        "--metrics", "mig", "--results-dir", str(tmp_path / "results"), "--no-progress",
    )  # fmt: skip
    one_line_error(code, err, "CRC")
    assert not (tmp_path / "results" / "runs").exists() or not any(
        (tmp_path / "results" / "runs").glob("*.json")
    )


def _bomb_member(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """An .npy whose header declares ``shape`` but which carries only a few bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return header.getvalue() + b"\0" * 4096


def _bomb_npz(path: Path, **members: bytes) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(f"{name}.npy", data)


def test_representations_declaring_a_huge_z_are_refused_before_allocation(tmp_path, capsys):
    rows = 2**40  # 8 TB of float64 codes declared in a ~1 kB file
    path = tmp_path / "bomb.npz"
    _bomb_npz(path, z=_bomb_member((rows, 1)), factors=_bomb_member((rows, 3), "<i8"))
    assert path.stat().st_size < 10_000
    code, _, err = cli(
        capsys, "evaluate", "--representations", str(path), "--dataset", "blobs",
        "--metrics", "mig", "--results-dir", str(tmp_path / "results"), "--no-progress",
    )  # fmt: skip
    one_line_error(code, err, "declares")


def test_members_other_than_z_and_factors_are_never_inflated(tmp_path):
    """A huge unrelated member costs nothing: only ``z`` and ``factors`` are read."""
    from dbench.engine.codes import load_codes
    from dbench.registry import DATASETS

    sim = DATASETS.create("blobs")
    rng = np.random.default_rng(0)
    factors = sim.factors_of(np.arange(sim.num_observations))
    z = factors + 0.01 * rng.standard_normal(factors.shape)
    path = tmp_path / "codes.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in (("z", z), ("factors", factors)):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array)
            zf.writestr(f"{name}.npy", buffer.getvalue())
        zf.writestr("extra.npy", _bomb_member((2**40, 8)))
    encode, subset, fingerprint = load_codes(path, sim)
    assert subset.num_observations == sim.num_observations and len(fingerprint) == 16


def test_arrays_images_declaring_more_than_memory_are_refused(tmp_path):
    from dbench.registry import DATASETS

    path = tmp_path / "bomb.npz"
    _bomb_npz(
        path,
        images=_bomb_member((2**30, 64, 64), "|u1"),  # 4 TB of uint8 images declared
        factors=_bomb_member((2**30,)),
    )
    with pytest.raises(UserError, match="declares") as info:
        DATASETS.create("arrays", path=str(path))
    assert "\n" not in str(info.value)


def test_a_damaged_chunk_of_a_real_shapes3d_file_is_one_line(tmp_path):
    """The file validates (labels read fine); the damage appears when training reads images."""
    import h5py

    from dbench.registry import DATASETS

    sizes = (2, 2, 2, 2, 2, 2)
    n = int(np.prod(sizes))
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1)
    path = tmp_path / "3dshapes.h5"
    images = np.random.default_rng(0).integers(0, 255, (n, 64, 64, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(1, 64, 64, 3), compression="gzip")
        f["labels"] = grid.reshape(n, 6).astype(np.float64)
        chunk = f["images"].id.get_chunk_info(5)  # image 5's compressed bytes
    raw = bytearray(path.read_bytes())
    raw[chunk.byte_offset : chunk.byte_offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))

    sim = DATASETS.create("shapes3d", source="file", path=str(path))
    assert sim.sim(np.zeros((1, 6), dtype=np.int64)).shape[0] == 1  # undamaged rows still read
    with pytest.raises(UserError, match="cannot read 'images'") as info:
        sim.sim(grid.reshape(n, 6)[5:6])
    assert "\n" not in str(info.value)
