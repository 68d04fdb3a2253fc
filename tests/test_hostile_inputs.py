"""Hostile inputs, round three (issue 27): links out of the results root, escaped markdown,
stated size limits, bad records skipped, one line for every user mistake.

Each test failed before its fix. Runs are tiny: PCA on 8x8 blobs with the fast Higgins
settings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dbench.engine.run import run_one
from tests._cli import cli, one_line_error
from tests.test_trust import tiny_config


@pytest.fixture
def run(tmp_path):
    record = run_one(tiny_config(tmp_path / "results"))
    return tmp_path / "results", record


def _edit(results: Path, run_id: str, change) -> None:
    path = results / "runs" / f"{run_id}.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# -- links out of the results root -----------------------------------------------------------


def test_an_artifact_folder_linked_outside_the_root_is_refused(run, capsys, tmp_path):
    results, record = run
    folder = results / "artifacts" / record["run_id"]
    outside = tmp_path / "outside"
    folder.rename(outside)  # the same model state, now outside the results root
    folder.symlink_to(outside, target_is_directory=True)
    figs = ["--output", str(tmp_path / "figs")]
    score = ["score", record["run_id"], "--metrics=higgins"]
    for command in (score, ["show", record["run_id"], *figs]):
        code, _, err = cli(capsys, *command, "--results-dir", str(results))
        one_line_error(code, err, "outside the results root")


def test_a_model_state_linked_to_another_file_is_refused(run, capsys, tmp_path):
    results, record = run
    state = results / record["model"]["state_file"]
    outside = tmp_path / "outside.state"
    state.rename(outside)
    state.symlink_to(outside)
    code, _, err = cli(
        capsys, "score", record["run_id"], "--metrics=higgins", "--results-dir", str(results)
    )
    one_line_error(code, err, "outside the results root")


def test_a_curve_file_linked_outside_the_root_is_refused(run, capsys, tmp_path):
    results, record = run
    outside = tmp_path / "secret.jsonl"
    outside.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.5}\n')
    (results / "artifacts" / record["run_id"] / "curve.jsonl").symlink_to(outside)
    _edit(results, record["run_id"], lambda d: d["training"].update(curve_file="curve.jsonl"))
    code, out, err = cli(
        capsys, "show", record["run_id"], "--results-dir", str(results),
        "--output", str(tmp_path / "figs"),
    )  # fmt: skip
    one_line_error(code, err, "outside the results root")
    assert not (tmp_path / "figs").exists()


def test_markdown_escapes_html_from_record_fields(run, capsys):
    results, record = run

    def hostile(data):
        data["identity"]["params"]["whiten"] = "<script>alert(1)</script>"
        data["identity"]["data_kwargs"]["sigma"] = "<img src=x onerror=alert(1)>"

    _edit(results, record["run_id"], hostile)
    code, out, err = cli(capsys, "leaderboard", "--format", "markdown", "--results-dir",
                         str(results))  # fmt: skip
    assert code == 0, err
    assert "<script>" not in out and "<img" not in out, out
    assert "&lt;script&gt;" in out and "&lt;img src=x onerror=alert(1)&gt;" in out, out


# -- every size a user controls has a stated limit -------------------------------------------


def _evaluate_codes(capsys, tmp_path, name="codes.npz", metrics="higgins", **arrays):
    np.savez(tmp_path / name, **arrays)
    return cli(
        capsys, "evaluate", "--representations", str(tmp_path / name), "--dataset", "blobs",
        "--set=dataset.grid=8", "--metrics", metrics,
        *(["--set=higgins.fast=true"] if "higgins" in metrics else []),
        "--results-dir", str(tmp_path / "results"),
    )  # fmt: skip


def test_codes_wider_than_the_limit_are_refused_before_scoring(tmp_path, capsys):
    from dbench.checks import MAX_CODE_DIMS

    z = np.zeros((64, MAX_CODE_DIMS + 1), dtype=np.float32)
    code, _, err = _evaluate_codes(capsys, tmp_path, z=z)
    one_line_error(code, err, f"{MAX_CODE_DIMS:,}")
    assert not (tmp_path / "results" / "runs").exists()


def test_seed_ranges_are_bounded_before_any_set_is_built():
    from dbench.checks import MAX_SWEEP_TRIALS
    from dbench.errors import UserError
    from dbench.sweep.plan import parse_seeds

    with pytest.raises(UserError, match=f"at most {MAX_SWEEP_TRIALS:,} trials"):
        parse_seeds("0-999999999")  # 10^9 ints: a set of them exhausts memory
    for text in ("4294967296", "0-99999999999"):
        with pytest.raises(UserError, match="0..4294967295"):
            parse_seeds(text)
    with pytest.raises(UserError, match="bad seeds"):
        parse_seeds("1" * 5000)  # int() of 5,000 digits raises ValueError
    assert len(parse_seeds(f"0-{MAX_SWEEP_TRIALS - 1},5")) == MAX_SWEEP_TRIALS


def test_a_sweep_grid_times_seeds_is_bounded(tmp_path):
    from dbench.errors import UserError
    from dbench.sweep.plan import SweepRequest, expand

    grid = {"n_components": list(range(1, 102))}
    request = SweepRequest(model="pca", dataset="blobs", grid=grid, seeds=list(range(1000)))
    with pytest.raises(UserError, match="101,000 trials .* at most 100,000"):
        expand([request], results_dir=str(tmp_path))


def test_udr_sample_count_is_bounded(capsys, tmp_path):
    code, _, err = cli(capsys, "udr", "a", "b", "--num-samples", "2000000000",
                       "--results-dir", str(tmp_path))  # fmt: skip
    one_line_error(code, err, "10..1,000,000")


# -- a bad record is skipped or shown as text, never a crash -----------------------------------


def test_mathtext_in_a_record_is_drawn_as_plain_text(tmp_path, capsys):
    results = tmp_path / "results"
    for n in (3, 4):
        for seed in (0, 1):
            kwargs = {"n_samples": 64, "n_components": n}
            record = run_one(tiny_config(results, model_kwargs=kwargs, seed=seed))

            def hostile(data, n=n):
                value = f"$\\undefinedcmd{{{n}}}$"  # matplotlib's mathtext cannot parse it
                data["identity"]["params"]["whiten"] = value
                data["model"]["params"]["whiten"] = value

            _edit(results, record["run_id"], hostile)
    code, out, err = cli(capsys, "report", "--results-dir", str(results),
                         "--output", str(tmp_path / "report.html"))  # fmt: skip
    assert code == 0, err
    assert "undefinedcmd" in (tmp_path / "report.html").read_text()
    code, out, err = cli(capsys, "leaderboard", "--plots", str(tmp_path / "plots"),
                         "--results-dir", str(results))  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "plots" / "seeds.png").is_file()


# -- codes and encoders: one line, never a traceback or a silent change -------------------------


def _blobs_factors() -> np.ndarray:
    from dbench.registry import DATASETS

    sim = DATASETS.create("blobs", grid=8)
    return sim.factors_of(np.arange(sim.num_observations))


@pytest.mark.parametrize(
    "arrays, needle",
    [
        ({"z": np.zeros((64, 0))}, "0 dimensions"),
        ({"z": np.full((64, 2), 1.7e308) * np.array([1, -1])}, "rescale"),
        ({"z": np.ones((64, 2)) + 1j}, "complex"),
        ({"z": np.ones((64, 2)), "factors": _blobs_factors() + 0j}, "complex"),
        (
            {"z": np.random.default_rng(0).normal(size=(64, 2)), "factors": _blobs_factors() + 0.5},
            "integer grid indices",
        ),  # fmt: skip
        (
            {
                "z": np.random.default_rng(0).normal(size=(65, 2)),
                "factors": np.vstack([_blobs_factors(), _blobs_factors()[:1]]),
            },
            "appear twice with different codes",
        ),  # fmt: skip
    ],
)
def test_codes_files_that_would_be_changed_or_crash_are_refused(tmp_path, capsys, arrays, needle):
    code, _, err = _evaluate_codes(capsys, tmp_path, metrics="higgins,mig", **arrays)
    one_line_error(code, err, needle)
    assert not (tmp_path / "results" / "runs").exists()


def test_a_repeated_factor_row_with_the_same_code_is_scored_once(tmp_path, capsys):
    factors = _blobs_factors()
    z = factors.astype(float)
    code, _, err = _evaluate_codes(capsys, tmp_path, metrics="mig", z=np.vstack([z, z[:5]]),
                                   factors=np.vstack([factors, factors[:5]]))  # fmt: skip
    assert code == 0, err


def test_the_default_name_of_a_codes_file_is_made_a_valid_label(tmp_path, capsys):
    code, out, err = _evaluate_codes(capsys, tmp_path, name="my codes.npz", metrics="mig",
                                     z=_blobs_factors().astype(float))  # fmt: skip
    assert code == 0, err
    assert [p.name for p in (tmp_path / "results" / "runs").iterdir()][0].startswith(
        "blobs-my-codes-"
    )


ENCODERS = """
import sys
import torch

def factory():
    raise RuntimeError("no weights here")

class NeedsWidth:
    def __init__(self, width):
        self.width = width

    def __call__(self, x):
        return x.flatten(1)[:, : self.width]

def exits(x):
    sys.exit(0)

def huge(x):  # float64 codes a float32 cast would make infinite
    return torch.full((len(x), 2), 1.7e308, dtype=torch.float64)

def empty(x):
    return torch.zeros(len(x), 0)

def complex_codes(x):
    return torch.ones(len(x), 2, dtype=torch.complex64)
"""


@pytest.fixture
def encoders(tmp_path, monkeypatch):
    (tmp_path / "hostile_encoders.py").write_text(ENCODERS)
    (tmp_path / "broken_at_import.py").write_text("raise ValueError('half-written module')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.parametrize(
    "target, needle",
    [
        ("hostile_encoders:factory", "factory() failed: RuntimeError: no weights here"),
        ("hostile_encoders:NeedsWidth", "needs width"),
        ("broken_at_import:x", "cannot import 'broken_at_import': ValueError: half-written"),
        ("hostile_encoders:exits", "sys.exit(0)"),
        ("hostile_encoders:huge", "1.7e+308"),
        ("hostile_encoders:empty", "0 dimensions"),
        ("hostile_encoders:complex_codes", "complex"),
    ],
)
def test_hostile_encoders_are_one_line(encoders, tmp_path, capsys, target, needle):
    code, _, err = cli(
        capsys, "evaluate", "--encoder", target, "--dataset", "blobs", "--set=dataset.grid=8",
        "--metrics", "higgins", "--set=higgins.fast=true", "--results-dir", str(tmp_path / "r"),
    )  # fmt: skip
    one_line_error(code, err, needle)
    assert not (tmp_path / "r" / "runs").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["run", "--seed", "-1"], "Invalid value for '--seed'"),
        (["run", "--seed", "x"], "Invalid value for '--seed'"),
        (["run", "--no-such-flag"], "No such option: --no-such-flag"),
        (["run", "--seed"], "requires an argument"),
        (["frobnicate"], "No such command"),
    ],
)
def test_typer_usage_errors_are_one_line_and_exit_2(capsys, args, needle):
    code, _, err = cli(capsys, *args)
    one_line_error(code, err, needle)


def test_help_still_exits_0(capsys):
    code, out, _ = cli(capsys, "run", "--help")
    assert code == 0 and "--seed" in out


# -- data files and from_arrays: one line, never a traceback -----------------------------------


def _arrays_dataset(**kwargs):
    from dbench.datasets.arrays import from_arrays

    return from_arrays(**kwargs)


def test_from_arrays_takes_tensors_and_refuses_what_numpy_cannot_hold():
    import datetime

    import torch

    from dbench.errors import UserError

    rng = np.random.default_rng(0)
    images = rng.random((40, 8, 8)).astype(np.float32)
    factors = np.repeat(np.arange(4), 10)
    data = _arrays_dataset(images=torch.from_numpy(images).requires_grad_(),
                           factors=torch.from_numpy(factors))  # fmt: skip
    assert data.factor_sizes == (4,)
    days = [datetime.datetime(2020, 1, 1 + i % 4) for i in range(40)]
    for kwargs, needle in (
        (dict(images=[np.zeros((8, 8)), np.zeros((7, 8))], factors=[0, 1]), "rows of equal"),
        (dict(images=images, factors=[[0, 1], [1]] + [[0, 1]] * 38), "rows of equal"),
        (dict(images=images, factors=factors, names=5), "names must be a list"),
        (dict(images=images, factors=np.array(days)), "real numbers"),
        (dict(images=images, factors=np.array(days, dtype="datetime64[D]")), "real numbers"),
        (dict(images=np.zeros((40, 0, 0)), factors=factors), "hold no pixels"),
        (dict(images=np.where(images > 0.9, np.nan, images), factors=factors), "NaN"),
    ):
        with pytest.raises(UserError, match=needle):
            _arrays_dataset(**kwargs)


def test_an_arrays_file_whose_member_fails_its_crc_is_one_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    factors = np.repeat(np.arange(4, dtype=np.float64), 10) + 1000.0
    np.savez(path, images=rng.random((40, 8, 8)).astype(np.float32), factors=factors)
    raw = bytearray(path.read_bytes())
    at = raw.rindex(np.float64(1000.0).tobytes())  # a byte of the factors member's data
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    code, _, err = cli(
        capsys, "run", "--model", "pca", "--dataset", "arrays", f"--set=dataset.path={path}",
        "--metrics", "mig", "--results-dir", str(tmp_path / "results"), "--no-progress",
    )  # fmt: skip
    one_line_error(code, err, "CRC")


def _shapes3d_file(path: Path, sizes=(2, 2, 2, 2, 2, 2), labels=None, images_group=False):
    import h5py

    n = int(np.prod(sizes))
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1)
    with h5py.File(path, "w") as f:
        if images_group:
            f.create_group("images")
        else:
            f["images"] = np.zeros((n, 64, 64, 3), dtype=np.uint8)
        f["labels"] = grid.reshape(n, len(sizes)).astype(np.float64) if labels is None else labels


@pytest.mark.parametrize(
    "kind, needle",
    [
        ("group", "no 'images' dataset"),
        ("constant", "takes a single value"),
        ("one image", "takes a single value"),
        ("nan", "NaN or infinite"),
        ("inf", "NaN or infinite"),
    ],
)
def test_hostile_shapes3d_files_are_refused(tmp_path, kind, needle):
    from dbench.errors import UserError
    from dbench.registry import DATASETS

    path = tmp_path / "3dshapes.h5"
    if kind == "group":
        _shapes3d_file(path, images_group=True)
    elif kind == "constant":
        _shapes3d_file(path, sizes=(2, 2, 2, 1, 2, 2))
    elif kind == "one image":
        _shapes3d_file(path, sizes=(1,) * 6)
    else:
        grid = np.stack(np.meshgrid(*[np.arange(2)] * 6, indexing="ij"), -1).reshape(64, 6)
        labels = grid.astype(np.float64)
        labels[:, 0] = np.where(labels[:, 0] == 1, np.nan if kind == "nan" else np.inf, 0.0)
        _shapes3d_file(path, labels=labels)
    with pytest.raises(UserError, match=needle):
        DATASETS.create("shapes3d", source="file", path=str(path))


@pytest.mark.parametrize(
    "header",
    [
        bytes([0, 0, 8, 4]) + (2**16).to_bytes(4, "big") * 4,  # 2^64 wraps to 0 in int64
        bytes([0, 0, 8, 3]) + (1).to_bytes(4, "big"),  # ends inside its header
    ],
)
def test_an_idx_header_that_overflows_is_one_line(tmp_path, header):
    from dbench.datasets.emnist_files import read_idx
    from dbench.errors import UserError

    path = tmp_path / "emnist-letters-train-images-idx3-ubyte"
    path.write_bytes(header)
    with pytest.raises(UserError, match="emnist_letters"):
        read_idx(path)


def test_a_checkpoint_of_the_wrong_shape_is_one_line_on_resume(tmp_path, capsys, one_thread):
    import torch

    args = ["run", "--model=betavae", "--dataset=blobs", "--set=dataset.grid=8",
            "--set=latent_dim=2", "--set=arch=higgins_mlp", "--metrics=mig", "--steps=2",
            "--batch-size=4", "--no-progress", "--results-dir", str(tmp_path)]  # fmt: skip
    code, _, err = cli(capsys, *args)
    assert code == 0, err
    (record,) = (tmp_path / "runs").glob("*.json")
    record.unlink()  # as if the run had been interrupted after its last checkpoint
    (checkpoint,) = (tmp_path / "artifacts").glob("*/checkpoint.pt")
    state = torch.load(checkpoint, weights_only=True)
    for module in state["modules"].values():
        key = next(iter(module))
        module[key] = torch.zeros(3, 3, 3)  # same run, a weight of another shape
    torch.save(state, checkpoint)
    code, _, err = cli(capsys, *args, "--resume")
    one_line_error(code, err, "does not fit this model")
    assert not list((tmp_path / "runs").glob("*.json"))


# -- wrong silent successes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting, needle",
    [
        ("dataset.sigma=1e-300", "0.25..64 pixels"),  # rendered blank images
        ("dataset.sigma=1e300", "0.25..64 pixels"),  # rendered one grey image everywhere
        ("dataset.grid=100000000", "2..1024"),  # 10^16 grid points
    ],
)
def test_blob_settings_that_render_nothing_useful_are_refused(tmp_path, capsys, setting, needle):
    code, _, err = cli(
        capsys, "run", "--model=pca", "--dataset=blobs", f"--set={setting}", "--metrics=mig",
        "--no-progress", "--results-dir", str(tmp_path),
    )  # fmt: skip
    one_line_error(code, err, needle)


def test_score_checks_the_results_folder_is_writable_before_scoring(run, capsys, monkeypatch):
    import os

    import dbench.engine.rescore as rescore

    results, record = run
    runs = str((results / "runs").absolute())
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: access(p, mode) and str(p) != runs)
    monkeypatch.setattr(rescore, "score_all", lambda *a, **k: pytest.fail("scored first"))
    code, _, err = cli(capsys, "score", record["run_id"], "--metrics=mig",
                       "--results-dir", str(results))  # fmt: skip
    one_line_error(code, err, "not writable")


@pytest.mark.parametrize("how", ["external link", "external storage"])
def test_hdf5_data_read_from_another_file_is_refused(tmp_path, capsys, how):
    """The checksum names one file; an HDF5 link or external storage would read another."""
    import h5py

    other = tmp_path / "other.h5"
    images = np.zeros((64, 1, 8, 8), dtype=np.float32)
    factors = np.stack([np.arange(64) % 8, np.arange(64) // 8], axis=1)
    with h5py.File(other, "w") as f:
        f["images"] = images
    raw = tmp_path / "raw.bin"
    images.tofile(raw)
    data = tmp_path / "data.h5"
    with h5py.File(data, "w") as f:
        f["factors"] = factors
        if how == "external link":
            f["images"] = h5py.ExternalLink(str(other), "/images")
        else:
            f.create_dataset("images", shape=images.shape, dtype=images.dtype,
                             external=[(str(raw), 0, images.nbytes)])  # fmt: skip
    code, _, err = cli(capsys, "run", "--model=pca", "--dataset=arrays",
                       f"--set=dataset.path={data}", "--metrics=mig", "--no-progress",
                       "--results-dir", str(tmp_path / "r"))  # fmt: skip
    one_line_error(code, err, "other file")
    assert not (tmp_path / "r").exists()
