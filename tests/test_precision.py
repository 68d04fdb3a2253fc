"""Training precision (``--precision auto|fp32|bf16``): resolution, the loop, encoding, the
run's identity and the leaderboard's grouping."""

from __future__ import annotations

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
    context = FitContext(budget=Budget(steps, 8), precision=prec, show_progress=False, **ctx)
    return model.fit(ToySquares(), np.random.default_rng(0), context)


@pytest.mark.parametrize("units", [True, False])
def test_auto_is_bf16_exactly_where_the_cpu_has_bf16_matrix_units(monkeypatch, units):
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: units)
    assert precision.resolve_precision("auto", "cpu") == ("bfloat16" if units else "float32")
    assert precision.resolve_precision("fp32", "cpu") == "float32"
    assert precision.resolve_precision("bf16", "cpu") == "bfloat16"  # asked: emulated if need be


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


def test_the_resolved_precision_is_part_of_the_run_id(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: True)
    kw = dict(model="betavae", dataset="blobs", metrics=["mig"], device="cpu")
    auto, bf16 = resolve_run(RunConfig(**kw)), resolve_run(RunConfig(**kw, precision="bf16"))
    fp32 = resolve_run(RunConfig(**kw, precision="fp32"))
    assert auto.run_id == bf16.run_id != fp32.run_id  # resolved values, not what was typed
    assert bf16.identity.precision == "bfloat16" and fp32.identity.precision == "float32"
    # models that do not train with torch have no precision: one run id whatever is asked
    pca = dict(kw, model="pca")
    assert (
        resolve_run(RunConfig(**pca)).run_id
        == resolve_run(RunConfig(**pca, precision="fp32")).run_id
    )


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
