"""The one training loop: exact resume, atomic checkpoints, divergence, reports, data paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dbench.contracts import Budget, FitContext
from dbench.errors import UserError
from dbench.models.curves import CURVE_FILE
from dbench.models.precision import choose_precision
from dbench.models.training import CHECKPOINT, LoopSettings, TrainingDiverged
from dbench.models.vae_family import BetaVAE, FactorVAE
from tests._toy import ToyGrey, ToySquares

FAST = LoopSettings(log_every=2, report_every=2, checkpoint_every=4, eval_sample=32)


class Crash(Exception):
    pass


def _model(cls=BetaVAE, **kwargs):
    m = cls(latent_dim=3, **kwargs)
    m.loop = FAST
    return m


def _ctx(steps=8, batch=8, **kwargs) -> FitContext:
    return FitContext(budget=Budget(steps, batch), **kwargs)


def _weights(model) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{k}": v.clone()
        for name, m in model.state_modules().items()
        for k, v in m.state_dict().items()
    }


@pytest.mark.parametrize("cls", [BetaVAE, FactorVAE])
def test_resume_after_crash_is_bit_identical(tmp_path, cls):
    sim = ToySquares()
    whole = _model(cls).fit(sim, np.random.default_rng(3), _ctx())

    def crash_after_six(step, **_):
        if step == 6:  # after the step-4 checkpoint, before the step-8 one
            raise Crash

    with pytest.raises(Crash):
        _model(cls).fit(
            sim, np.random.default_rng(3), _ctx(workdir=tmp_path, report=crash_after_six)
        )
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["step"] == 4
    resumed = _model(cls).fit(sim, np.random.default_rng(3), _ctx(workdir=tmp_path, resume=True))

    assert resumed.fit_info_["resumed_from_step"] == 4
    a, b = _weights(whole), _weights(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert whole.fit_info_["recon_loss"] == resumed.fit_info_["recon_loss"]
    assert whole.fit_info_["kl_per_dim"] == resumed.fit_info_["kl_per_dim"]


def test_checkpoints_are_atomic_and_final(tmp_path):
    _model().fit(ToySquares(), np.random.default_rng(0), _ctx(steps=6, workdir=tmp_path))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted([CHECKPOINT, CURVE_FILE])  # no temp file left behind
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["step"] == 6 and {"modules", "optimizers", "gen", "np_rng"} <= state.keys()


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    _model().fit(ToySquares(), np.random.default_rng(0), _ctx(steps=4, workdir=tmp_path))
    other = BetaVAE(beta=2.0, latent_dim=3)
    with pytest.raises(UserError, match="different run"):
        other.fit(ToySquares(), np.random.default_rng(0), _ctx(workdir=tmp_path, resume=True))


def test_same_seed_same_weights_other_seed_differs():
    sim = ToySquares()
    a = _weights(_model().fit(sim, np.random.default_rng(1), _ctx(steps=3)))
    b = _weights(_model().fit(sim, np.random.default_rng(1), _ctx(steps=3)))
    c = _weights(_model().fit(sim, np.random.default_rng(2), _ctx(steps=3)))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


class _NaNAt(BetaVAE):
    """Injects a NaN loss at a given step."""

    nan_step = 5

    def loss(self, step, parts):
        loss = super().loss(step, parts)
        return loss * float("nan") if step.index + 1 >= self.nan_step else loss


def test_nan_loss_stops_with_one_line_and_keeps_last_good_checkpoint(tmp_path):
    model = _model(_NaNAt)
    with pytest.raises(TrainingDiverged) as info:
        model.fit(ToySquares(), np.random.default_rng(0), _ctx(workdir=tmp_path))
    message = str(info.value)
    assert isinstance(info.value, UserError) and "\n" not in message
    assert "diverged" in message and "step 4" in message
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["modules"]["encoder"].values())


def test_huge_learning_rate_diverges():
    model = BetaVAE(latent_dim=3, lr=1e9)
    model.loop = LoopSettings(log_every=1, eval_sample=8)
    with pytest.raises(TrainingDiverged, match="NaN/inf"):
        model.fit(ToySquares(), np.random.default_rng(0), _ctx(steps=20))


def test_report_receives_step_loss_kl_and_progress_bar_runs():
    seen = []
    ctx = FitContext(budget=Budget(4, 8), report=lambda **kw: seen.append(kw))
    _model().fit(ToySquares(), np.random.default_rng(0), ctx)
    assert [r["step"] for r in seen] == [2, 4]
    assert {"loss", "kl", "recon", "images_per_s"} <= seen[0].keys()


def test_datasets_without_a_table_train_from_sim():
    model = _model().fit(ToyGrey(), np.random.default_rng(0), _ctx(steps=2))
    info = model.fit_info_
    assert info["data_path"] == "sim" and info["decoder"] == "gaussian"
    # the default precision is auto, decided once per process and architecture (measured on
    # this CPU's load, so the test asks for that decision rather than predicting it)
    assert info["device"] == "cpu" and info["precision_choice"]["asked"] == "auto"
    assert info["precision"] == choose_precision("auto", "cpu", _model(), ToyGrey()).chosen


def test_fit_info_describes_the_run():
    info = _model().fit(ToySquares(), np.random.default_rng(0), _ctx(steps=2)).fit_info_
    assert info["budget"] == {"steps": 2, "batch_size": 8}
    assert info["data_path"] == "compact_table" and info["decoder"] == "bernoulli"
    assert len(info["kl_per_dim"]) == 3
    assert info["kl_total"] == pytest.approx(sum(info["kl_per_dim"]))
    assert np.isfinite(info["recon_loss"]) and info["images_per_s"] > 0
    assert info["beta"] == 4.0 and info["beta_norm"] == pytest.approx(4.0 * 3 / 32**2)
