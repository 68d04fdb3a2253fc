"""Verified dataset caches: a tampered, truncated or unreadable cache is a one-line error naming
the file and ``dbench data prepare NAME``, which then rebuilds it (never reading the corrupt
one); killed prepares leave no debris behind the next one; ``data info`` says "corrupt".

Small settings throughout: blobs on an 8x8 grid (64 images), dSprites on a 192-image grid
with a barcode stand-in for the renderer, 3dshapes with a cheap stand-in for its tracer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dbench.cli import app
from dbench.contracts import Preparable
from dbench.datasets import cache as cache_mod
from dbench.datasets import shapes3d_render
from dbench.datasets.blobs import Blobs
from dbench.datasets.cache import VerifiedCache
from dbench.datasets.dsprites import CACHE_NAME, DSprites
from dbench.datasets.dsprites_variants import ColorDSprites
from dbench.datasets.shapes3d import Shapes3D
from dbench.errors import UserError
from dbench.reporting.preview import cache_state, info_lines


class MiniSprites(DSprites):
    """dSprites' cache code on a 3x2x2x4x4 grid (192 images)."""

    factor_sizes = (3, 2, 2, 4, 4)


def _barcodes(self, progress, device):
    """Stand-in for the full render: each packed row spells its grid index."""
    g = np.arange(self.num_observations)
    packed = np.zeros((len(g), 512), dtype=np.uint8)
    packed[:, 0], packed[:, 1] = g >> 8, g & 255
    return packed


@pytest.fixture
def mini_sprites(monkeypatch):
    """DSprites itself on the small grid with the barcode renderer, so the CLI's
    ``make_dataset("dsprites")`` gets it too."""
    monkeypatch.setattr(DSprites, "factor_sizes", MiniSprites.factor_sizes)
    monkeypatch.setattr(DSprites, "_render_all", _barcodes)


def _one_line_error(call, *patterns):
    with pytest.raises(UserError) as err:
        call()
    text = str(err.value)
    assert "\n" not in text
    for pattern in patterns:
        assert pattern in text, text
    return text


def _truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[: keep if keep > 0 else len(data) + keep])


# -- the one error, for every kind of damage ---------------------------------------------------


def test_zeroed_blobs_images_are_refused_not_trained_on(tmp_path):
    b = Blobs(grid=8, data_dir=tmp_path)
    path = b.prepare(progress=False)
    assert b.compact_table().data.max() > 200  # the real blobs
    with h5py.File(path, "r+") as f:  # zero the images, keep every attribute
        f["images"][...] = 0
    again = Blobs(grid=8, data_dir=tmp_path)
    _one_line_error(
        again.compact_table, str(path), "checksum mismatch", "`dbench data prepare blobs`"
    )
    assert again.cache_state().startswith(f"corrupt: {path}")


@pytest.mark.parametrize("keep", [-1, -5000, 20000, 10])
def test_truncated_blobs_cache_is_one_line_and_corrupt_in_info(tmp_path, keep):
    b = Blobs(grid=8, data_dir=tmp_path)
    path = b.prepare(progress=False)
    _truncate(path, keep)
    _one_line_error(Blobs(grid=8, data_dir=tmp_path).compact_table, str(path), "corrupt")
    state = b.cache_state()
    assert state.startswith("corrupt:") and "dbench data prepare blobs" in state
    assert any(line.startswith("cache        corrupt:") for line in info_lines("blobs", b))


def test_legacy_blobs_cache_without_checksum_is_corrupt(tmp_path):
    b = Blobs(grid=8, data_dir=tmp_path)
    path = b.prepare(progress=False)
    with h5py.File(path, "r+") as f:  # as written before caches carried a content checksum
        del f.attrs["sha256"]
    assert "no content checksum" in b.cache_state()
    b.prepare(progress=False)
    assert b.cache_state() == f"ready: {path}"


def test_dsprites_tamper_is_caught_before_its_checksum_is_recorded(tmp_path, mini_sprites):
    path = DSprites(data_dir=tmp_path).prepare(progress=False)
    sim = DSprites(data_dir=tmp_path)
    original = sim.describe()["checksum"]
    with h5py.File(path, "r+") as f:  # the stored sha256 stays: only the images change
        f["packed"][100, 3] ^= 0x10
    sim = DSprites(data_dir=tmp_path)
    assert sim.source == "cache"
    _one_line_error(sim.describe, str(path), "checksum mismatch", "`dbench data prepare dsprites`")
    _one_line_error(lambda: sim.sim(np.zeros((1, 5), np.int64)), "checksum mismatch")
    assert sim.cache_state().startswith("corrupt:")
    # the variants draw on dSprites' cache and say so
    color = ColorDSprites(data_dir=str(tmp_path))
    _one_line_error(color.describe, str(path), "`dbench data prepare dsprites`")
    assert "corrupt:" in color.cache_state()
    # rebuilt: the same images, so the same checksum as before the damage
    sim.prepare(progress=False)
    assert sim.describe()["checksum"] == original
    assert DSprites(data_dir=tmp_path).describe()["checksum"] == original


# -- prepare rebuilds what it told the user to rebuild -----------------------------------------


def test_cli_prepare_rebuilds_a_truncated_dsprites_cache(tmp_path, mini_sprites):
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path)]
    assert (
        runner.invoke(app, ["data", "prepare", "dsprites", "--no-progress", *args]).exit_code == 0
    )
    original = DSprites(data_dir=tmp_path).checksum
    path = tmp_path / "cache" / CACHE_NAME
    _truncate(path, 1000)  # even the header is gone
    sim = DSprites(data_dir=tmp_path)  # constructing is fine: `data prepare` needs to
    message = _one_line_error(sim.describe, str(path), "`dbench data prepare dsprites`")
    info = runner.invoke(app, ["data", "info", "dsprites", *args])
    assert info.exit_code == 0 and "cache        corrupt:" in info.output, info.output
    result = runner.invoke(app, ["data", "prepare", "dsprites", "--no-progress", *args])
    assert result.exit_code == 0, (message, result.output, result.exception)
    assert DSprites(data_dir=tmp_path).checksum == original
    assert DSprites(data_dir=tmp_path).cache_state() == f"ready: {path}"


def test_cli_prepare_rebuilds_zeroed_blobs_with_the_original_images(tmp_path):
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path)]
    assert runner.invoke(app, ["data", "prepare", "blobs", "--no-progress", *args]).exit_code == 0
    before = Blobs(data_dir=tmp_path)
    table, checksum = before.compact_table().data.clone(), before.describe()["checksum"]
    path = before.cache_path()
    with h5py.File(path, "r+") as f:
        f["images"][...] = 0
    assert "cache        corrupt:" in runner.invoke(app, ["data", "info", "blobs", *args]).output
    assert runner.invoke(app, ["data", "prepare", "blobs", "--no-progress", *args]).exit_code == 0
    after = Blobs(data_dir=tmp_path)
    assert torch.equal(after.compact_table().data, table)
    assert after.describe()["checksum"] == checksum
    assert "cache        ready:" in runner.invoke(app, ["data", "info", "blobs", *args]).output


# -- debris of killed prepares -----------------------------------------------------------------

_KILLED_PREPARE = """
import os, signal, sys
from dbench.datasets.blobs import Blobs
from dbench.datasets.rendered import RenderedGrid

def blocks(self, block=16):
    yield next(RenderedGrid.blocks(self, 16))  # one block written, then
    os.kill(os.getpid(), signal.SIGKILL)  # killed as the OOM killer or a power cut would

Blobs.blocks = blocks
Blobs(grid=8, data_dir=sys.argv[1]).prepare(progress=False)
"""


def test_debris_of_a_killed_prepare_is_removed_by_the_next(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", _KILLED_PREPARE, str(tmp_path)], capture_output=True, timeout=120
    )
    assert out.returncode == -9, out.stderr
    folder = tmp_path / "cache"
    orphans = [p.name for p in folder.iterdir()]
    assert len(orphans) == 1 and orphans[0].startswith(".dbench-tmp-blobs-"), orphans
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    legacy = folder / f"{CACHE_NAME}.tmp-{dead}"  # the naming used before dbench.atomic
    legacy.write_bytes(b"half a file")
    # a live writer's temporary file (HDF5 holds a lock on it) must survive
    with h5py.File(folder / ".dbench-tmp-faces3d-x.h5.live", "w") as live:
        b = Blobs(grid=8, data_dir=tmp_path)
        path = b.prepare(progress=False)
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [path.name, ".dbench-tmp-faces3d-x.h5.live"]
        )
        assert live.id.valid
    assert b.cache_state() == f"ready: {path}"


# -- verification is once per process ----------------------------------------------------------


def test_a_verdict_is_remembered_until_the_file_changes(tmp_path, monkeypatch):
    cache = VerifiedCache(tmp_path / "c.h5", "toy", "rows", (10, 4))
    rows = np.arange(40, dtype=np.uint8).reshape(10, 4)
    with cache.write(note="x") as out:
        out.write(rows[:3])
        out.write(rows[3:])
    hashed = []
    real_read = cache_mod._read_rows
    monkeypatch.setattr(
        cache_mod,
        "_read_rows",
        lambda ds, o, hashing: hashed.append(hashing) or real_read(ds, o, hashing),
    )
    assert np.array_equal(cache.read(), rows) and hashed == [True]  # just written: racy
    old = time.time() - 60
    os.utime(cache.path, (old, old))
    assert cache.verify()["note"] == "x" and np.array_equal(cache.read(), rows)
    assert cache.problem() is None
    assert hashed == [True, True, False]  # hashed once at the old mtime, then trusted
    with h5py.File(cache.path, "r+") as f:  # any change moves the mtime: checked again
        f["rows"][0, 0] = 99
    assert "checksum mismatch" in cache.problem()


# -- 3dshapes: its traced colour weights are a verified cache ---------------------------------


def test_shapes3d_weights_cache(tmp_path, monkeypatch):
    def fake_trace(shape, scale, orient, p):
        g = (shape * 100 + scale * 10 + orient).float()
        return torch.sigmoid(g[:, None, None, None] * torch.ones(1, 3, 64, 64)) / 3

    monkeypatch.setattr(shapes3d_render, "trace_weights", fake_trace)
    s = Shapes3D(source="procedural", data_dir=tmp_path)
    assert s.cache_state().startswith("absent")
    path = s.prepare(progress=False)
    assert path.name.startswith("shapes3d-weights-") and path.stat().st_size < 30e6
    v = np.array([[0, 5, 2, 3, 0, 7], [9, 9, 9, 7, 3, 14]])
    expected = s.sim(v)

    def no_trace(*a):
        raise AssertionError("traced although the weights are cached")

    monkeypatch.setattr(shapes3d_render, "trace_weights", no_trace)
    loaded = Shapes3D(source="procedural", data_dir=tmp_path)
    assert loaded.cache_state() == f"ready: {path}"
    assert torch.equal(loaded.sim(v), expected)
    with h5py.File(path, "r+") as f:
        f["weights"][7] = 0
    broken = Shapes3D(source="procedural", data_dir=tmp_path)
    _one_line_error(lambda: broken.sim(v), str(path), "`dbench data prepare shapes3d`")
    _one_line_error(lambda: broken.sim(v), "checksum mismatch")  # not traced around it
    assert broken.cache_state().startswith("corrupt:")
    monkeypatch.setattr(shapes3d_render, "trace_weights", fake_trace)
    broken.prepare(progress=False)
    assert torch.equal(Shapes3D(source="procedural", data_dir=tmp_path).sim(v), expected)


# -- the cache ability is a declared protocol --------------------------------------------------


class _PluginWithCache:
    """Not a dbench class: having the members is what declares the capability."""

    def prepare(self, progress: bool = True):
        return None

    def cache_state(self) -> str:
        return "ready: somewhere"


class _NoCache:
    def cache_path(self):  # an attribute alone is no declaration
        return "/nonexistent"


def test_cache_state_goes_by_the_preparable_protocol(tmp_path):
    for sim in (
        DSprites(data_dir=tmp_path, source="procedural"),
        ColorDSprites(data_dir=str(tmp_path), source="procedural"),
        Blobs(grid=8, data_dir=tmp_path),
    ):
        assert isinstance(sim, Preparable), sim
        assert "absent (dbench data prepare" in sim.cache_state()
    assert cache_state(_PluginWithCache()) == "ready: somewhere"
    assert not isinstance(_NoCache(), Preparable) and cache_state(_NoCache()) == "none"


# -- the first full render caches itself ---------------------------------------------------------


def test_first_full_render_writes_the_cache_and_the_next_instance_loads_it(
    tmp_path, mini_sprites, capsys
):
    first = DSprites(data_dir=tmp_path)
    assert first.source == "procedural"
    table = first.compact_table(progress=False)
    cache_path = tmp_path / "cache" / CACHE_NAME
    assert cache_path.is_file()
    assert str(cache_path) in capsys.readouterr().err  # said once, on stderr
    assert first.source == "procedural"  # the run that rendered says so in its record
    second = DSprites(data_dir=tmp_path)
    assert second.source == "cache"
    assert torch.equal(second.compact_table(progress=False).data, table.data)
    second.compact_table(progress=False)
    assert "cached" not in capsys.readouterr().err  # loading writes nothing, says nothing


def test_explicit_procedural_source_renders_without_writing_a_cache(tmp_path, mini_sprites):
    DSprites(data_dir=tmp_path, source="procedural").compact_table(progress=False)
    assert not (tmp_path / "cache" / CACHE_NAME).exists()


def test_a_corrupt_cache_is_left_for_prepare_not_overwritten_by_a_render(tmp_path, mini_sprites):
    cache_path = tmp_path / "cache" / CACHE_NAME
    cache_path.parent.mkdir()
    cache_path.write_bytes(b"not hdf5")
    sprites = DSprites(data_dir=tmp_path)
    assert sprites.source == "cache"  # auto takes the cache; its first use says it is corrupt
    _one_line_error(lambda: sprites.compact_table(progress=False), "corrupt", "prepare")
    assert cache_path.read_bytes() == b"not hdf5"
