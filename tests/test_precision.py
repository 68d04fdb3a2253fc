"""Training precision (``--precision auto|fp32|bf16``): resolution, the loop, encoding, the
run's identity and the leaderboard's grouping."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dbench.contracts import Budget, FitContext, Observations
from dbench.engine.config import RunConfig
from dbench.engine.resolve import resolve_run
from dbench.errors import UserError
from dbench.models import precision
from dbench.models.training import CHECKPOINT, LoopSettings
from dbench.models.vae_family import BetaVAE
from tests._cli import cli, one_line_error
from tests._toy import ToySquares

FAST = LoopSettings(log_every=2, report_every=2, checkpoint_every=2, eval_sample=32)


def _fit(prec: str, steps: int = 4, **ctx):
    model = BetaVAE(latent_dim=3)
    model.loop = FAST
    context = FitContext(budget=Budget(steps, 8), precision=prec, **ctx)
    return model.fit(ToySquares(), np.random.default_rng(0), context)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Each test measures into its own cache folder, with no decision left from another."""
    monkeypatch.setenv(precision.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("DBENCH_PRECISION", raising=False)  # conftest's fp32: these test auto
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    monkeypatch.setattr(precision, "machine_load", lambda: (0.5, 2))  # quiet unless a test says
    precision.forget()
    yield
    precision.forget()


def _timed(monkeypatch, speedup: float) -> list:
    """Replace the measurement by one that returns ``speedup``; the list counts the calls."""
    calls = []

    def measure(model, sim):
        calls.append((type(model).__name__, tuple(sim.observation_shape)))
        return speedup

    monkeypatch.setattr(precision, "measure_speedup", measure)
    return calls


@pytest.mark.parametrize(
    "speedup, chosen",
    [(1.6, "bfloat16"), (precision.BF16_MARGIN, "bfloat16"), (1.1, "float32"), (0.7, "float32")],
)
def test_auto_on_a_cpu_follows_the_measured_speedup(monkeypatch, speedup, chosen):
    calls = _timed(monkeypatch, speedup)
    choice = precision.choose_precision("auto", "cpu", BetaVAE(latent_dim=3), ToySquares())
    assert choice.chosen == chosen and len(calls) == 1
    assert calls[0][1] == tuple(ToySquares().observation_shape)  # the dataset's shape
    assert choice.as_dict() == {
        "asked": "auto",
        "chosen": chosen,
        "measured_speedup": round(speedup, 3),
        "margin": precision.BF16_MARGIN,
        "cached": False,
    }
    assert precision.resolve_precision("auto", "cpu", BetaVAE(latent_dim=3), ToySquares()) == (
        chosen
    )


@pytest.mark.parametrize("speedup", [3.0, 0.5])
def test_fp32_and_bf16_still_force_one_without_measuring(monkeypatch, speedup):
    calls = _timed(monkeypatch, speedup)
    for asked, wanted in (("fp32", "float32"), ("bf16", "bfloat16")):
        choice = precision.choose_precision(asked, "cpu", BetaVAE(latent_dim=3), ToySquares())
        assert choice.as_dict() == {"asked": asked, "chosen": wanted}
    assert calls == []


def test_auto_measures_nothing_where_the_cpu_has_no_bf16_at_all(monkeypatch):
    calls = _timed(monkeypatch, 3.0)
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)
    choice = precision.choose_precision("auto", "cpu", BetaVAE(latent_dim=3), ToySquares())
    assert choice.chosen == "float32" and choice.measured_speedup is None and calls == []


@pytest.mark.parametrize("units", [True, False])
def test_without_a_model_to_time_auto_keeps_the_amx_rule(monkeypatch, units):
    calls = _timed(monkeypatch, 3.0)
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: units)
    assert precision.resolve_precision("auto", "cpu") == ("bfloat16" if units else "float32")
    assert calls == []


def test_the_measurement_is_cached_per_machine_and_architecture(monkeypatch, tmp_path):
    calls = _timed(monkeypatch, 1.5)
    first = precision.choose_precision("auto", "cpu", BetaVAE(latent_dim=3), ToySquares())
    again = precision.choose_precision("auto", "cpu", BetaVAE(latent_dim=7), ToySquares())
    assert len(calls) == 1 and again is first  # decided once per process
    precision.forget()  # a new process: reads the file instead of measuring
    monkeypatch.setattr(precision, "measure_speedup", lambda model, sim: 0.5)  # ignored
    cached = precision.choose_precision("auto", "cpu", BetaVAE(latent_dim=3), ToySquares())
    assert cached.chosen == "bfloat16" and cached.measured_speedup == 1.5 and cached.cached
    assert (tmp_path / "cache" / precision.CACHE_FILE).is_file()
    # another architecture, or another thread count, is measured on its own
    other = precision.choose_precision("auto", "cpu", BetaVAE(arch="mlp"), ToySquares())
    assert other.chosen == "float32" and other.cached is False
    threads = torch.get_num_threads()
    key = precision.cache_key(BetaVAE(), ToySquares())
    try:
        torch.set_num_threads(threads + 1)
        assert precision.cache_key(BetaVAE(), ToySquares()) != key
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '["a list"]',
        '{"format": "another/1", "entries": {}}',
        "KEY_ENTRY",  # the right key with a ratio that is not a finite number
    ],
)
def test_a_corrupt_cache_is_ignored_and_rewritten(monkeypatch, tmp_path, content):
    import json

    path = tmp_path / "cache" / precision.CACHE_FILE
    path.parent.mkdir()
    key = precision.cache_key(BetaVAE(latent_dim=3), ToySquares())
    if content == "KEY_ENTRY":
        bad = {key: {"speedup": "fast"}, "other": {"speedup": float("nan")}}
        content = json.dumps({"format": precision._CACHE_FORMAT, "entries": bad})
    path.write_text(content)
    calls = _timed(monkeypatch, 1.3)
    choice = precision.choose_precision("auto", "cpu", BetaVAE(latent_dim=3), ToySquares())
    assert len(calls) == 1 and choice.chosen == "bfloat16" and choice.cached is False
    saved = json.loads(path.read_text())
    assert saved["format"] == precision._CACHE_FORMAT
    assert list(saved["entries"]) == [key] and saved["entries"][key]["speedup"] == 1.3


def test_the_real_measurement_times_the_models_own_steps(one_thread):
    model, before = BetaVAE(latent_dim=3), torch.random.get_rng_state()
    speedup = precision.measure_speedup(model, ToySquares())
    assert 0.01 < speedup < 100
    assert torch.equal(torch.random.get_rng_state(), before)  # the run's randomness untouched
    assert not hasattr(model, "encoder_")  # measured on a copy: the model is still unfitted


def test_an_unknown_precision_is_one_line_before_any_work(capsys):
    with pytest.raises(UserError, match="precision must be one of auto, fp32, bf16"):
        RunConfig(model="pca", precision="fp16")
    code, _, err = cli(capsys, "run", "--model", "pca", "--precision", "half", "--steps", "1")
    one_line_error(code, err, "precision must be one of")


def test_bf16_trains_in_bf16_records_it_and_encodes_in_float32_outputs():
    bf16, fp32 = _fit("bf16"), _fit("fp32")
    assert bf16.fit_info_["precision"] == "bfloat16"
    assert fp32.fit_info_["precision"] == "float32"
    # the arithmetic differs, so the weights do (same seed, same batches)
    w16, w32 = bf16.encoder_.state_dict(), fp32.encoder_.state_dict()
    assert w16.keys() == w32.keys()
    assert all(v.dtype == torch.float32 for v in w16.values())  # weights stay fp32
    assert not all(torch.equal(w16[k], w32[k]) for k in w16)
    sim, v = ToySquares(), np.array([[0, 0, 0], [1, 2, 5], [2, 7, 1]])
    obs = Observations(v, None, _render=lambda: sim.sim(v))
    codes = bf16.encode(obs)
    assert codes.dtype == torch.float32
    # encoding follows the training precision: the same weights encoded in fp32 differ a bit
    bf16.fit_info_["precision"] = "float32"
    exact = bf16.encode(obs)
    assert not torch.equal(codes, exact)
    assert torch.allclose(codes, exact, atol=0.05, rtol=0.05)


def test_a_bf16_checkpoint_does_not_resume_as_fp32(tmp_path):
    _fit("bf16", steps=2, workdir=tmp_path)
    assert (tmp_path / CHECKPOINT).is_file()
    with pytest.raises(UserError, match="different run"):
        _fit("fp32", steps=4, workdir=tmp_path, resume=True)


@pytest.mark.parametrize("speedup", [1.5, 1.0])
def test_the_resolved_precision_is_part_of_the_run_id(monkeypatch, speedup):
    calls = _timed(monkeypatch, speedup)
    kw = dict(model="betavae", dataset="blobs", metrics=["mig"], device="cpu")
    auto, bf16 = resolve_run(RunConfig(**kw)), resolve_run(RunConfig(**kw, precision="bf16"))
    fp32 = resolve_run(RunConfig(**kw, precision="fp32"))
    assert calls == [("BetaVAE", (1, 64, 64))]  # blobs' shape, measured once
    same = bf16 if speedup >= precision.BF16_MARGIN else fp32
    assert auto.run_id == same.run_id and bf16.run_id != fp32.run_id  # resolved, not typed
    assert auto.precision == same.precision
    assert bf16.identity.precision == "bfloat16" and fp32.identity.precision == "float32"
    # models that do not train with torch have no precision: one run id whatever is asked
    pca = dict(kw, model="pca")
    assert (
        resolve_run(RunConfig(**pca)).run_id
        == resolve_run(RunConfig(**pca, precision="fp32")).run_id
    )
    assert len(calls) == 1


def test_fp32_and_bf16_runs_never_average_together(tmp_path, capsys):
    for prec in ("fp32", "bf16"):
        code, out, err = cli(
            capsys,
            "run",
            "--model",
            "betavae",
            "--dataset",
            "blobs",
            "--steps",
            "2",
            "--metrics",
            "mig",
            "--precision",
            prec,
            "--no-progress",
            "--results-dir",
            str(tmp_path),
        )
        assert code == 0, err
    from dbench.reporting.aggregate import leaderboard
    from dbench.reporting.runs import load_runs

    runs = load_runs(tmp_path)
    assert sorted(runs["precision"]) == ["bfloat16", "float32"]
    board = leaderboard(tmp_path)
    assert len(board) == 2 and sorted(board["n"]) == [1, 1]
    assert sorted(board["precision"]) == ["bfloat16", "float32"]

    from dbench.reporting.tables import precision_note, render

    note = "betavae trained in both bfloat16 and float32: these are different configurations"
    for fmt in ("markdown", "table"):
        assert note in " ".join(render(board, fmt).split())
    one = board[board["precision"] == "float32"]
    assert "trained in both" not in render(one, "markdown")
    assert precision_note(one) == ""


def test_the_caption_note_names_each_model_with_two_precisions():
    import pandas as pd

    from dbench.reporting.tables import precision_note

    rows = pd.DataFrame(
        {
            "model": ["betavae", "betavae", "vae", "pca", "pca"],
            "precision": ["bfloat16", "float32", "float32", None, None],
        }
    )
    assert precision_note(rows) == (
        "betavae trained in both bfloat16 and float32: these are different configurations "
        "(see --precision)"
    )
    assert precision_note(rows[rows["model"] != "betavae"]) == ""


# -- the device, resolved with the precision -------------------------------------------------
def test_a_run_config_is_built_without_importing_torch():
    """``--precision`` is checked when a RunConfig is built; torch stays unloaded (CLI start)."""
    import subprocess
    import sys

    code = (
        "import sys, dbench.engine.config as c; c.RunConfig(model='pca', precision='bf16'); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_device_auto_means_a_gpu_when_there_is_one_and_in_a_trial_only_its_own(monkeypatch):
    from dbench.engine.environment import resolve_device
    from dbench.sweep.trial import trial_device

    assert resolve_device is precision.resolve_device  # one rule, wherever it is named
    for present in (True, False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda present=present: present)
        assert precision.resolve_device("auto") == ("cuda" if present else "cpu")
        # a sweep trial: what Ray gave it decides, not what torch sees on the machine
        assert trial_device("auto", has_gpu=not present) == ("cpu" if present else "cuda")
        assert trial_device("cpu", has_gpu=True) == "cpu"
    assert precision.resolve_device("cpu") == "cpu"


@pytest.mark.parametrize("device", ["nonsense", "mps"])
def test_an_unusable_device_is_one_line(device):
    with pytest.raises(UserError, match=f"device '{device}' is not usable here") as info:
        precision.resolve_device(device)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_a_ratio_timed_on_an_oversubscribed_machine_is_not_cached(monkeypatch, tmp_path):
    """Load 9 on 2 CPUs: the decision holds for this process and is measured again in the
    next one, instead of fixing a busy moment's ratio for every later run."""
    calls = _timed(monkeypatch, 0.6)
    monkeypatch.setattr(precision, "machine_load", lambda: (9.0, 2))
    busy = precision.choose_precision("auto", "cpu", BetaVAE(latent_dim=3), ToySquares())
    assert busy.chosen == "float32" and busy.measured_speedup == 0.6 and not busy.cached
    assert not (tmp_path / "cache" / precision.CACHE_FILE).exists()
    precision.forget()  # the next process, on a quiet machine: measured again, then cached
    monkeypatch.setattr(precision, "machine_load", lambda: (0.3, 2))
    calls_before = len(calls)
    _timed(monkeypatch, 1.6)
    quiet = precision.choose_precision("auto", "cpu", BetaVAE(latent_dim=3), ToySquares())
    assert calls_before == 1 and quiet.chosen == "bfloat16" and not quiet.cached
    assert (tmp_path / "cache" / precision.CACHE_FILE).is_file()


def test_a_cached_ratio_timed_under_load_is_measured_again(monkeypatch, tmp_path):
    key = precision.cache_key(BetaVAE(latent_dim=3), ToySquares())
    entry = {"speedup": 0.66, "measured": "2026-12-07T05:56:31+00:00", "cpus": 2,
             "load_1min": 10.67}  # fmt: skip
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / precision.CACHE_FILE).write_text(
        json.dumps({"format": precision._CACHE_FORMAT, "entries": {key: entry}})
    )
    calls = _timed(monkeypatch, 1.7)
    chosen = precision.choose_precision("auto", "cpu", BetaVAE(latent_dim=3), ToySquares())
    assert len(calls) == 1 and chosen.chosen == "bfloat16" and chosen.measured_speedup == 1.7
    saved = json.loads((folder / precision.CACHE_FILE).read_text())["entries"][key]
    assert saved["speedup"] == 1.7 and saved["load_1min"] == 0.5
