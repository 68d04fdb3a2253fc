"""Every command-line option and API entry point, checked by its effect on what is written.

``run``: --beta, --steps, --batch-size, --budget, --device, --resume, --data-dir; ``sweep``: a
preset file with --grid, --storage, --cpus-per-trial and --resume; ``leaderboard``:
--dataset/--model/--metric; ``report``: --dataset/--metric; and ``dbench.get_dataset``,
``get_model``, ``get_metric``, ``load_runs``. Runs are tiny (PCA, the oracle, or a beta-VAE for
a few steps on 8 x 8 blobs with the fast Higgins settings), commands run in-process except the
sweep, which starts a private Ray in a subprocess as a user's shell would.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dbench.contracts import Budget
from dbench.engine.config import RunConfig
from dbench.engine.run import run_one
from dbench.models.training import LoopSettings
from dbench.models.vae_family import BetaVAE
from tests._cli import cli
from tests._ray import stop_leftovers
from tests.conftest import FAST_HIGGINS

REPO = Path(__file__).resolve().parents[1]
HIGGINS = [f"--set=higgins.{k}={v}" for k, v in FAST_HIGGINS.items()]
VAE_RUN = [
    "--model=betavae",
    "--dataset=blobs",
    "--set=dataset.grid=8",
    "--set=latent_dim=2",
    "--set=arch=higgins_mlp",
    "--metrics=higgins",
    *HIGGINS,
    "--no-progress",
]


def record_of(out: str) -> dict:
    """The record a ``dbench run`` wrote (its path is the last line of the output)."""
    line = next(x for x in out.splitlines() if x.strip().startswith("record: "))
    return json.loads(Path(line.split("record: ", 1)[1].strip()).read_text())


@pytest.fixture
def small_loop(monkeypatch):
    """A smaller fixed evaluation sample for the end-of-training statistics (not identity),
    and one torch thread (several times faster for tiny nets on two shared cores)."""
    import torch

    monkeypatch.setattr(BetaVAE, "loop", LoopSettings(eval_sample=64, checkpoint_every=2))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def train_steps(monkeypatch):
    """Every beta-VAE train step as (step index, batch size, beta, images in the batch)."""
    calls = []
    original = BetaVAE.train_step

    def counted(self, step):
        batch = step.batch
        sizes = []

        def batch_and_size():
            x = batch()
            sizes.append(len(x))
            return x

        step.batch = batch_and_size
        try:
            return original(self, step)
        finally:
            step.batch = batch
            calls.append((step.index, step.batch_size, self.beta, sizes[0]))

    monkeypatch.setattr(BetaVAE, "train_step", counted)
    return calls


# -- run: --beta, --steps, --batch-size, --device ------------------------------------------------


def test_beta_steps_batch_size_and_device_reach_the_training_and_the_record(
    capsys, tmp_path, small_loop, train_steps, monkeypatch
):
    import torch

    from dbench.engine.environment import resolve_device

    # Pretend a GPU is present: "auto" would pick it, --device cpu must not.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    code, out, err = cli(
        capsys,
        "run",
        *VAE_RUN,
        "--beta=2",
        "--steps=3",
        "--batch-size=5",
        "--device=cpu",
        "--precision=fp32",  # auto would first time training steps of a copy of the model
        "--results-dir",
        str(tmp_path),
    )
    assert code == 0, err
    record = record_of(out)
    # --beta: the model was built and trained with it, and the record says so
    assert record["model"]["kwargs"]["beta"] == 2.0
    assert record["model"]["params"]["beta"] == 2.0 and record["training"]["beta"] == 2.0
    # --steps / --batch-size: exactly 3 steps of 5 images, recorded as the run's budget
    assert train_steps == [(0, 5, 2.0, 5), (1, 5, 2.0, 5), (2, 5, 2.0, 5)]
    assert record["budget"] == {"steps": 3, "batch_size": 5}
    assert record["config"]["budget"] == {"steps": 3, "batch_size": 5}
    assert record["training"]["steps"] == 3 and record["training"]["batch_size"] == 5
    # --device cpu: trained, scored and recorded on the CPU although "auto" would take cuda
    assert record["config"]["device"] == "cpu"
    assert record["environment"]["device"] == "cpu" and record["training"]["device"] == "cpu"


def _captured_config(capsys, monkeypatch, *args) -> tuple[int, str, RunConfig | None]:
    """Run the CLI with run_one replaced: the RunConfig the command built, nothing trained."""
    import dbench.engine.run as engine_run

    seen = []

    def fake_run_one(config, *a, **k):
        seen.append(config)
        return {"run_id": "captured", "scores": {}, "path": "nowhere"}

    with monkeypatch.context() as patched:
        patched.setattr(engine_run, "run_one", fake_run_one)
        code, _, err = cli(capsys, "run", *args)
    return code, err, seen[0] if seen else None


def test_budget_names_a_model_budget_and_shorthands_win(capsys, monkeypatch, tmp_path):
    from dbench.engine.resolve import resolve_run

    base = [*VAE_RUN, "--results-dir", str(tmp_path)]
    code, err, config = _captured_config(capsys, monkeypatch, *base, "--budget=paper")
    assert code == 0, err
    assert resolve_run(config).budget == Budget(steps=300_000, batch_size=64)
    code, err, config = _captured_config(capsys, monkeypatch, *base, "--budget=paper", "--steps=10")
    assert code == 0, err
    assert resolve_run(config).budget == Budget(steps=10, batch_size=64)  # --steps wins
    code, err, config = _captured_config(capsys, monkeypatch, *base, "--budget=default")
    assert resolve_run(config).budget == BetaVAE.default_budget
    code, err, config = _captured_config(capsys, monkeypatch, *base, "--budget=huge")
    assert code == 2 and config is None
    assert "no budget named 'huge'" in err and "paper" in err


# -- run --resume ------------------------------------------------------------------------------


def test_resume_continues_an_interrupted_run_from_its_checkpoint(
    capsys, tmp_path, small_loop, train_steps, monkeypatch
):
    """4 steps, checkpoint every 2, interrupted during step 3: --resume trains steps 3 and 4
    only, and the record says where it resumed."""
    args = ["run", *VAE_RUN, "--steps=4", "--batch-size=4", "--results-dir", str(tmp_path)]
    counted = BetaVAE.train_step

    def interrupt_at_step_2(self, step):
        if step.index == 2:
            raise KeyboardInterrupt
        return counted(self, step)

    monkeypatch.setattr(BetaVAE, "train_step", interrupt_at_step_2)
    code, _, err = cli(capsys, *args)
    assert code == 130 and "its last training checkpoint is kept at" in err, err
    assert [c[0] for c in train_steps] == [0, 1]
    assert not list((tmp_path / "runs").glob("*.json"))  # no record for an interrupted run

    monkeypatch.setattr(BetaVAE, "train_step", counted)
    train_steps.clear()
    code, out, err = cli(capsys, *args, "--resume")
    assert code == 0, err
    record = record_of(out)
    assert [c[0] for c in train_steps] == [2, 3]  # only the missing steps were trained
    assert record["training"]["resumed_from_step"] == 2 and record["training"]["steps"] == 4
    assert record["config"]["resume"] is True


# -- run --data-dir --------------------------------------------------------------------------


def test_data_dir_is_where_the_dataset_is_read_from(capsys, monkeypatch, tmp_path):
    from dbench.datasets.blobs import Blobs
    from dbench.datasets.dsprites import FILE_STEM
    from dbench.engine.resolve import resolve_run

    # dSprites finds a real file in --data-dir (not in $DBENCH_DATA): its source and path say so
    data = tmp_path / "data"
    data.mkdir()
    (data / f"{FILE_STEM}.npz").write_bytes(b"stand-in for the real file")
    oracle = ["--model=oracle", "--dataset=dsprites", "--metrics=mig", "--no-progress"]
    code, err, config = _captured_config(capsys, monkeypatch, *oracle, "--data-dir", str(data))
    assert code == 0, err
    info = resolve_run(config).dataset_info
    assert info["source"] == "file" and info["path"] == str(data / f"{FILE_STEM}.npz")
    code, err, config = _captured_config(capsys, monkeypatch, *oracle)
    assert resolve_run(config).dataset_info["source"] == "procedural"  # $DBENCH_DATA is empty

    # A real run reads the blobs cache in --data-dir: a corrupt one there stops it, naming it.
    cache = Blobs(grid=8, data_dir=str(data)).prepare(progress=False)
    assert cache.is_relative_to(data)
    with open(cache, "r+b") as fh:
        fh.truncate(cache.stat().st_size // 2)
    results = tmp_path / "results"
    args = ["run", *VAE_RUN, "--steps=1", "--batch-size=2", "--results-dir", str(results)]
    code, _, err = cli(capsys, *args, "--data-dir", str(data))
    assert code == 2 and str(cache) in err and "corrupt" in err, err
    code, out, err = cli(capsys, *args)  # the same run elsewhere renders its images: fine
    assert code == 0, err
    saved = record_of(out)
    assert "data_dir" not in saved["config"]  # where data lived is not what ran
    assert saved["dataset"]["source"] == "procedural"


# -- leaderboard and report filters, and the Python API -------------------------------------------


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Three tiny runs: pca (higgins only) and the oracle (higgins, mig) on 8 x 8 blobs, and the
    oracle on dSprites (factors only: nothing rendered)."""
    root = tmp_path_factory.mktemp("board")
    data = tmp_path_factory.mktemp("empty-data")
    higgins = {f"higgins.{key}": value for key, value in FAST_HIGGINS.items()}
    fast = {**higgins, "mig.num_train": 500}
    common = dict(results_dir=str(root), data_dir=str(data), device="cpu")
    blobs = dict(dataset="blobs", dataset_kwargs={"grid": 8})
    run_one(
        RunConfig(
            model="pca",
            model_kwargs={"n_samples": 64, "n_components": 3},
            metrics=["higgins"],
            settings=higgins,
            **blobs,
            **common,
        )
    )
    run_one(
        RunConfig(model="oracle", metrics=["higgins", "mig"], settings=fast, **blobs, **common)
    )
    run_one(
        RunConfig(
            model="oracle",
            dataset="dsprites",
            metrics=["higgins", "mig"],
            settings=fast,
            **common,
        )
    )
    return root


def board(capsys, results: Path, *filters: str) -> list[dict[str, str]]:
    code, out, err = cli(
        capsys, "leaderboard", "--format=csv", *filters, "--results-dir", str(results)
    )
    assert code == 0, err
    return list(csv.DictReader(io.StringIO(out)))


def test_leaderboard_filters_keep_only_what_they_name(capsys, results):
    everything = board(capsys, results)
    assert sorted((r["dataset"], r["model"]) for r in everything) == [
        ("blobs", "oracle"),
        ("blobs", "pca"),
        ("dsprites", "oracle"),
    ]
    rows = board(capsys, results, "--dataset=blobs")
    assert sorted(r["model"] for r in rows) == ["oracle", "pca"]
    assert {r["dataset"] for r in rows} == {"blobs"}
    rows = board(capsys, results, "--model=oracle")
    assert sorted(r["dataset"] for r in rows) == ["blobs", "dsprites"]
    assert {r["model"] for r in rows} == {"oracle"}
    rows = board(capsys, results, "--metric=mig")
    assert sorted((r["dataset"], r["model"]) for r in rows) == [
        ("blobs", "oracle"),
        ("dsprites", "oracle"),  # pca was not scored with mig
    ]
    assert any(c.startswith("mig.") for c in rows[0])
    assert not any(c.startswith("higgins.") for c in rows[0]), list(rows[0])
    rows = board(capsys, results, "--dataset=blobs", "--model=oracle", "--metric=mig")
    assert [(r["dataset"], r["model"]) for r in rows] == [("blobs", "oracle")]
    code, _, err = cli(capsys, "leaderboard", "--metric=sap", "--results-dir", str(results))
    assert code == 2 and "no run here was scored with metric 'sap'" in err


def test_report_filters_keep_only_what_they_name(capsys, results, tmp_path):
    def report(page, *filters: str) -> str:
        args = ["-o", str(page), *filters, "--compare=none", "--per-run=0"]
        code, _, err = cli(capsys, "report", *args, "--results-dir", str(results))
        assert code == 0, err
        return page.read_text()

    assert "3 runs in 3 configurations" in report(tmp_path / "all.html")
    text = report(tmp_path / "blobs.html", "--dataset=blobs", "--metric=mig")
    assert "1 runs in 1 configurations" in text  # blobs, scored with mig: the oracle only
    assert "dsprites" not in text
    tables = "".join(re.findall(r"<table.*?</table>", text, flags=re.S))
    assert "oracle" in tables and "mig" in tables
    assert "higgins" not in tables and "pca" not in tables


def test_python_api_entry_points(results, tmp_path):
    import dbench
    from dbench.errors import UserError
    from dbench.representation import Representation

    frame = dbench.load_runs(results)
    assert len(frame) == 3
    assert sorted(zip(frame["dataset"], frame["model"], strict=True)) == [
        ("blobs", "oracle"),
        ("blobs", "pca"),
        ("dsprites", "oracle"),
    ]
    pca = frame[frame["model"] == "pca"].iloc[0]
    assert pca["n_components"] == 3 and np.isnan(pca["mig.mig"])
    assert (frame.loc[frame["model"] == "oracle", "higgins.eval_accuracy"] > 0.9).all()

    blobs = dbench.get_dataset("blobs", grid=5, sigma=2.0)
    assert blobs.factor_sizes == (5, 5) and blobs.describe()["settings"]["sigma"] == 2.0
    sprites = dbench.get_dataset("dsprites", data_dir=str(tmp_path))
    assert sprites.cache_path.is_relative_to(tmp_path)
    with pytest.raises(UserError, match="unknown dataset"):
        dbench.get_dataset("blobz")

    model = dbench.get_model("pca", n_components=2, n_samples=32)
    assert model.get_params() == {"n_components": 2, "n_samples": 32}
    with pytest.raises(UserError, match="did you mean 'n_components'"):
        dbench.get_model("pca", n_component=2)

    mig = dbench.get_metric("mig")
    assert mig.primary == "mig" and mig.name == "mig"
    rep = Representation(blobs, lambda obs: np.asarray(obs.factors, dtype=float))
    assert mig(blobs, rep, np.random.default_rng(0), num_train=400)["mig"] > 0.8
    shuffled = Representation(blobs, lambda obs: np.asarray(obs.factors, dtype=float)[:, ::-1])
    assert mig(blobs, shuffled, np.random.default_rng(0), num_train=400)["mig"] > 0.8
    with pytest.raises(UserError, match="unknown metric"):
        dbench.get_metric("mgi")


# -- sweep: a preset file, --grid, --storage, --cpus-per-trial, then --resume ----------------------

PRESET = """
description = "two baselines on tiny blobs"
dataset = "blobs"
metrics = ["higgins"]
seeds = "0"
settings = { "dataset.grid" = 8, "higgins.num_train" = 100, "higgins.batch_size" = 4 }

[[runs]]
model = "oracle"

[[runs]]
model = "pca"
settings = { n_samples = 64, n_components = 2 }
"""


@pytest.fixture
def ray_tmp():
    """A private Ray temp dir for the sweep subprocesses; their leftovers stopped by PID."""
    temp = Path(tempfile.mkdtemp(prefix="dbo"))  # short: Ray's socket paths live in it
    yield temp
    left = stop_leftovers(temp)
    shutil.rmtree(temp, ignore_errors=True)
    assert not left, f"Ray processes left after the sweep: {left}"


def _sweep(args: list[str], ray_tmp: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(DBENCH_RAY_TMPDIR=str(ray_tmp))
    return subprocess.run(
        [sys.executable, "-m", "dbench", "sweep", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


@pytest.mark.slow
def test_sweep_preset_grid_storage_cpus_per_trial_and_resume(tmp_path, ray_tmp):
    preset = tmp_path / "tiny.toml"
    preset.write_text(textwrap.dedent(PRESET))
    results, storage = tmp_path / "results", tmp_path / "tune-state"
    where = ["--results-dir", str(results), "--storage", str(storage)]
    first = _sweep(
        [
            *("--preset", str(preset), "--grid", "dataset.grid=8,9"),
            *("--cpus-per-trial", "2", "--num-cpus", "2", "--name", "tiny", *where),
        ],
        ray_tmp,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert "sweep tiny: 4 trials" in first.stdout and "4 trials: 4 done" in first.stdout
    records = [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]
    # --preset: both of its runs with their settings; --grid: each at both grid values
    got = sorted((r["config"]["model"], r["config"]["dataset_kwargs"]["grid"]) for r in records)
    assert got == [("oracle", 8), ("oracle", 9), ("pca", 8), ("pca", 9)]
    for r in records:
        assert r["config"]["metric_kwargs"]["higgins"]["num_train"] == 100
        if r["config"]["model"] == "pca":
            assert r["config"]["model_kwargs"] == {"n_samples": 64, "n_components": 2}
    # --storage: Tune's state (and the sweep's resources) there, not under the results root
    meta = json.loads((storage / "tiny" / "dbench-sweep.json").read_text())
    assert not (results / "sweeps").exists()
    # --cpus-per-trial 2 on 2 CPUs: recorded, and one trial at a time
    assert meta["cpus"] == 2
    assert "/ 1 in parallel" in first.stdout, first.stdout
    mtimes = {p.name: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")}

    again = _sweep(["--resume", "tiny", *where], ray_tmp)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming sweep tiny" in again.stdout and "4 trials: 4 done" in again.stdout
    assert again.stdout.count("earlier") == 4  # finished in the first session: not run again
    after = {p.name: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")}
    assert after == mtimes
