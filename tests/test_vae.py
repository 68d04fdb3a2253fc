"""The VAE family: every model trains and encodes, the loss terms behave as their papers
define them, persistence round-trips, and bad hyperparameters fail with one line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dbench.contracts import Budget, FitContext, Observations
from dbench.errors import UserError
from dbench.models import objectives as obj
from dbench.models.training import LoopSettings
from dbench.models.vae import PAPER_BUDGET
from dbench.models.vae_family import BetaVAE, UntrainedVAE
from dbench.registry import MODELS
from tests._toy import ToyGrey, ToySquares

VAE_MODELS = ["vae", "betavae", "vae_untrained", "annealedvae", "factorvae", "betatcvae", "dipvae"]
FAST = LoopSettings(eval_sample=32)


def _fit(name, sim=None, steps=3, **kwargs):
    model = MODELS.create(name, latent_dim=kwargs.pop("latent_dim", 3), **kwargs)
    model.loop = FAST
    ctx = FitContext(budget=Budget(steps, 8))
    return model.fit(sim or ToySquares(), np.random.default_rng(0), ctx)


def _obs(sim, n=10, seed=1) -> Observations:
    v = sim.sample_factors(n, np.random.default_rng(seed))
    return Observations(v, None, lambda: sim.sim(v))


@pytest.mark.parametrize("name", VAE_MODELS)
def test_every_model_trains_and_encodes_means(name):
    sim = ToySquares()
    model = _fit(name, sim)
    z = model.encode(_obs(sim))
    assert tuple(z.shape) == (10, 3) and torch.isfinite(z).all()
    assert torch.equal(z, model.encode(_obs(sim)))  # the mean: no sampling
    info = model.fit_info_
    assert info["steps"] == 3  # an explicit budget wins, even for vae_untrained
    assert np.isfinite(info["recon_loss"]) and len(info["kl_per_dim"]) == 3


def test_mlp_architecture_and_gaussian_decoder_on_grey_data():
    sim = ToyGrey()
    model = _fit("betavae", sim, arch="higgins_mlp")
    assert model.fit_info_["decoder"] == "gaussian" and model.fit_info_["arch"] == "higgins_mlp"
    assert tuple(model.encode(_obs(sim)).shape) == (10, 3)


def test_save_load_round_trip_gives_identical_encodings(tmp_path):
    sim = ToySquares()
    model = _fit("factorvae", sim)
    model.save(tmp_path / "m.state")
    loaded = MODELS.create("factorvae", latent_dim=3).load(tmp_path / "m.state")
    assert torch.equal(model.encode(_obs(sim)), loaded.encode(_obs(sim)))
    assert loaded.fit_info_ == model.fit_info_
    with pytest.raises(UserError, match="does not match"):
        MODELS.create("factorvae", latent_dim=4).load(tmp_path / "m.state")
    (tmp_path / "junk").write_bytes(b"not a model")
    with pytest.raises(UserError, match="cannot load"):
        BetaVAE().load(tmp_path / "junk")


def test_untrained_vae_is_seeded_initialisation():
    sim = ToySquares()
    a, b = UntrainedVAE(latent_dim=3), UntrainedVAE(latent_dim=3)
    for m in (a, b):
        m.loop = FAST
        m.fit(sim, np.random.default_rng(7), FitContext())
    assert a.fit_info_["steps"] == 0
    assert torch.equal(a.encode(_obs(sim)), b.encode(_obs(sim)))


def test_budgets_and_presets():
    assert BetaVAE.default_budget.batch_size == 64 and BetaVAE.default_budget.steps > 0
    assert PAPER_BUDGET == Budget(steps=300_000, batch_size=64)
    assert BetaVAE.presets["paper"] is PAPER_BUDGET
    assert UntrainedVAE.default_budget.steps == 0


# -- loss terms ------------------------------------------------------------------------------


def test_kl_matches_monte_carlo():
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -1.0, 1.0]], dtype=torch.float64)
    z = mu + torch.randn(200_000, 3, generator=gen, dtype=torch.float64) * (0.5 * logvar).exp()
    log_q = obj.gaussian_log_density(z, mu, logvar)
    log_p = obj.gaussian_log_density(z, torch.zeros_like(mu), torch.zeros_like(logvar))
    mc = (log_q - log_p).mean(0)
    analytic = obj.kl_per_dim(mu, logvar)[0]
    assert torch.allclose(mc, analytic, atol=0.02)
    assert obj.kl_per_dim(torch.zeros(1, 2), torch.zeros(1, 2)).abs().max() == 0


def test_reconstruction_is_summed_over_pixels():
    x = torch.tensor([[[[0.0, 1.0]]]])
    logits = torch.zeros_like(x)
    assert obj.reconstruction(logits, x, "bernoulli").item() == pytest.approx(2 * math.log(2))
    assert obj.reconstruction(logits, x, "gaussian").item() == pytest.approx(0.5)


def test_capacity_rises_linearly_then_holds():
    assert obj.capacity(0, 25.0, 100) == 0.0
    assert obj.capacity(50, 25.0, 100) == 12.5
    assert obj.capacity(100, 25.0, 100) == obj.capacity(10**6, 25.0, 100) == 25.0


def test_annealed_vae_anneals_over_the_budget_by_default():
    model = _fit("annealedvae", steps=4)
    assert model.fit_info_["anneal_steps"] == 4 and model.fit_info_["beta"] is None


def test_total_correlation_small_when_independent_large_when_correlated():
    gen = torch.Generator().manual_seed(0)
    m, d = 512, 4
    logvar = torch.full((m, d), -4.0)
    mu_indep = torch.randn(m, d, generator=gen)
    mu_corr = torch.randn(m, 1, generator=gen).expand(m, d).clone()

    def tc(mu):
        z = obj.reparameterise(mu, logvar, gen)
        return obj.total_correlation_mws(z, mu, logvar, dataset_size=m).item()

    t_indep, t_corr = tc(mu_indep), tc(mu_corr)
    assert math.isfinite(t_indep) and math.isfinite(t_corr)
    assert t_corr > t_indep + 2.0  # duplicated latents share (d - 1) x their information


def test_permute_dims_shuffles_each_column_independently():
    z = torch.arange(40.0).view(10, 4)
    p = obj.permute_dims(z, torch.Generator().manual_seed(0))
    for j in range(4):
        assert torch.equal(p[:, j].sort().values, z[:, j])  # same values per dimension
    assert not torch.equal(p, z)


def test_dip_regulariser_penalises_covariance_away_from_identity():
    gen = torch.Generator().manual_seed(0)
    white = torch.randn(20_000, 3, generator=gen)
    zero_logvar = torch.full_like(white, -30.0)
    assert obj.dip_regulariser(white, zero_logvar, "i", 10.0, 100.0).item() < 0.5
    skewed = white @ torch.tensor([[1.0, 0.9, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert obj.dip_regulariser(skewed, zero_logvar, "i", 10.0, 0.0).item() > 10.0
    # DIP-VAE-II adds E[sigma^2] to the diagonal: unit-variance noise doubles it.
    unit_logvar = torch.zeros_like(white)
    ii = obj.dip_regulariser(white, unit_logvar, "ii", 0.0, 1.0).item()
    assert ii == pytest.approx(3.0, rel=0.1)  # (2 - 1)^2 on each of 3 dimensions


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("betavae", {"beta": -1}, "beta"),
        ("betavae", {"beta": "four"}, "beta"),
        ("betavae", {"latent_dim": 0}, "latent_dim"),
        ("betavae", {"arch": "resnet"}, "arch"),
        ("betavae", {"decoder": "poisson"}, "decoder"),
        ("betavae", {"lr": 0}, "lr"),
        ("betavae", {"compile": "yes"}, "compile"),
        ("annealedvae", {"anneal_steps": -5}, "anneal_steps"),
        ("annealedvae", {"c_max": float("nan")}, "c_max"),
        ("dipvae", {"kind": "iii"}, "kind"),
        ("factorvae", {"disc_lr": -1.0}, "disc_lr"),
        ("betavae", {"gamma": 3}, "has no setting 'gamma'"),
    ],
)
def test_bad_hyperparameters_fail_with_one_line(name, kwargs, message):
    with pytest.raises(UserError, match=message) as info:
        MODELS.create(name, **kwargs)
    assert "\n" not in str(info.value)


def test_burgess_arch_needs_sides_divisible_by_16():
    class Odd(ToySquares):
        observation_shape = (1, 24, 24)

    sim = Odd()
    sim.observation_shape = (1, 24, 24)
    with pytest.raises(UserError, match="divisible by 16"):
        _fit("betavae", sim)


def test_training_leaves_the_global_torch_rng_alone():
    before = torch.random.get_rng_state()
    _fit("factorvae", steps=2)
    assert torch.equal(before, torch.random.get_rng_state())


def test_torch_models_refuse_each_others_state_files(tmp_path):
    from dbench.models.infogan import InfoGAN

    model = _fit("betavae", steps=1)
    model.save(tmp_path / "m.state")
    with pytest.raises(UserError, match="not a dbench-infogan/1 file"):
        InfoGAN().load(tmp_path / "m.state")
    assert BetaVAE(latent_dim=3).load(tmp_path / "m.state").fit_info_ == model.fit_info_
