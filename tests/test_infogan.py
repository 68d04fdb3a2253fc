"""InfoGAN (Chen et al. 2016): net shapes, the loss terms against hand-computed values, the
representation, determinism and exact resume on tiny budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dbench.contracts import Budget, FitContext, Observations
from dbench.errors import UserError
from dbench.models import infogan as ig
from dbench.models.infogan import InfoGAN
from dbench.models.infogan_nets import Critic, Generator, halvings
from dbench.models.precision import autocast
from dbench.models.training import LoopSettings
from dbench.testing import TinyShapes
from tests._resume import crash_and_resume

FAST = LoopSettings(log_every=2, report_every=2, checkpoint_every=4, eval_sample=1)


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(**kwargs) -> InfoGAN:
    m = InfoGAN(**{"noise_dim": 4, "channels": 8, **kwargs})
    m.loop = FAST
    return m


def _ctx(steps=8, **kwargs) -> FitContext:
    return FitContext(budget=Budget(steps, 8), **kwargs)


def _obs(sim, n=12, seed=1) -> Observations:
    v = sim.sample_factors(n, np.random.default_rng(seed))
    return Observations(v, None, lambda: sim.sim(v))


def _weights(model) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{k}": v.clone()
        for name, m in model.state_modules().items()
        for k, v in m.state_dict().items()
    }


@pytest.mark.parametrize(("side", "layers", "start"), [(64, 4, 4), (28, 2, 7), (16, 2, 4)])
def test_nets_fit_any_image_size(side, layers, start):
    assert halvings(side, side) == layers
    gen = Generator((1, side, side), 10, 8)
    critic = Critic((1, side, side), 5 + 3, 8)
    assert gen.start == (8, start, start)
    x = gen(torch.rand(4, 10))
    assert x.shape == (4, 1, side, side)
    logit, q = critic(torch.sigmoid(x))
    assert logit.shape == (4,) and q.shape == (4, 8)
    assert torch.equal(critic.eval().q(x), critic(x)[1])


def test_dsprites_sizes_are_the_documented_ones():
    critic, gen = Critic((1, 64, 64), 5, 32), Generator((1, 64, 64), 67, 32)
    convs = [m for m in critic.body if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.stride) for m in convs] == [
        (1, 32, (2, 2)),
        (32, 32, (2, 2)),
        (32, 32, (2, 2)),
        (32, 32, (2, 2)),
    ]
    linears = [m for m in critic.body if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 256)]
    assert critic.d_head.out_features == 1 and critic.q_head[-1].out_features == 5
    assert gen.fc[0].in_features == 67 and gen.start == (32, 4, 4)


def test_loss_terms_match_hand_computed_values():
    sp = lambda t: math.log1p(math.exp(t))  # noqa: E731 - softplus
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 0.0])
    want_d = (sp(-2.0) + sp(0.0)) / 2 + (sp(-1.0) + sp(0.0)) / 2
    assert ig.d_loss(real, fake).item() == pytest.approx(want_d, rel=1e-6)
    assert ig.d_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(2 * math.log(2))
    assert ig.g_loss(torch.tensor([-1.0])).item() == pytest.approx(sp(1.0), rel=1e-6)
    mu = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    c = torch.tensor([[1.0, 0.0], [1.0, -1.0]])
    assert ig.info_cont(mu, c).item() == pytest.approx(0.5 * (1.0 + 4.0) / 2)
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    want_cat = (math.log(2) + math.log(4 / 3)) / 2
    assert ig.info_cat(logits, torch.tensor([0, 0])).item() == pytest.approx(want_cat)
    # weighted sum: lambda_cont * NLL_cont + lambda_cat * NLL_cat, Q's outputs [means, logits]
    model = InfoGAN(n_cont=2, n_cat=2, lambda_cont=0.5, lambda_cat=2.0)
    parts = model.information(torch.cat([mu, logits], 1), c, torch.tensor([0, 0]))
    assert parts["info"].item() == pytest.approx(0.5 * 1.25 + 2.0 * want_cat)


def test_codes_are_uniform_in_the_box_and_categories_one_hot():
    model = InfoGAN(n_cont=5, n_cat=3, noise_dim=4)
    noise, codes, cat = model.sample_codes(4000, torch.Generator().manual_seed(0), "cpu")
    assert codes.shape == (4000, 5) and noise.shape == (4000, 4)
    assert codes.min() >= -1 and codes.max() <= 1 and abs(codes.mean().item()) < 0.05
    assert set(cat.tolist()) == {0, 1, 2}
    latent = model.latent(noise, codes, cat)
    assert latent.shape == (4000, 12) and torch.equal(latent[:, 9:].sum(1), torch.ones(4000))


def test_fit_encode_decode_and_record():
    sim = TinyShapes()
    model = _model(n_cat=3).fit(sim, np.random.default_rng(0), _ctx(steps=3))
    z = model.encode(_obs(sim))
    assert z.shape == (12, 5) and torch.isfinite(z).all()
    model.critic_.eval()
    # the representation is Q's mean of the continuous codes, computed in the precision the
    # model trained in (bf16 autocast where the CPU has bf16 units)
    with torch.no_grad(), autocast("cpu", model.fit_info_["precision"]):
        q = model.critic_.q(_obs(sim).images.contiguous(memory_format=torch.channels_last))
    assert torch.equal(z, q[:, :5].float())
    x = model.decode(z)
    assert x.shape == (12, 1, 16, 16) and x.min() >= 0 and x.max() <= 1
    info = model.fit_info_
    assert info["steps"] == 3 and info["kl_per_dim"] is None and info["recon_loss"] is None


def test_same_seed_same_weights_other_seed_differs():
    sim = TinyShapes()
    a = _model().fit(sim, np.random.default_rng(1), _ctx(steps=3))
    b = _model().fit(sim, np.random.default_rng(1), _ctx(steps=3))
    c = _model().fit(sim, np.random.default_rng(2), _ctx(steps=3))
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_resume_after_crash_is_bit_identical(tmp_path):
    sim = TinyShapes()
    whole = _model().fit(sim, np.random.default_rng(3), _ctx())

    resumed = crash_and_resume(_model, sim, _ctx, tmp_path)  # killed at step 6, resumed at 4
    a, b = _weights(whole), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_save_load_and_bad_files(tmp_path):
    sim = TinyShapes()
    model = _model().fit(sim, np.random.default_rng(0), _ctx(steps=2))
    model.save(tmp_path / "m.state")
    loaded = _model().load(tmp_path / "m.state")
    assert torch.equal(model.encode(_obs(sim)), loaded.encode(_obs(sim)))
    with pytest.raises(UserError, match="does not match"):
        _model(n_cont=3).load(tmp_path / "m.state")
    (tmp_path / "junk").write_bytes(b"not a model")
    with pytest.raises(UserError, match="cannot load"):
        InfoGAN().load(tmp_path / "junk")
    with pytest.raises(UserError, match="fitted or loaded"):
        InfoGAN().encode(_obs(sim))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_cont": 0}, "n_cont"),
        ({"n_cat": 1}, "n_cat"),
        ({"noise_dim": -1}, "noise_dim"),
        ({"lambda_cont": -1.0}, "lambda_cont"),
        ({"lr_g": 0.0}, "lr_g"),
    ],
)
def test_bad_hyperparameters_fail_with_one_line(kwargs, message):
    with pytest.raises(UserError, match=message):
        InfoGAN(**kwargs)


def test_paper_defaults_and_budget():
    model = InfoGAN()
    assert model.get_params() == {
        "n_cont": 5,
        "n_cat": 0,
        "noise_dim": 62,
        "lambda_cont": 1.0,
        "lambda_cat": 1.0,
        "lr_d": 2e-4,
        "lr_g": 1e-3,
        "channels": 32,
    }
    assert model.default_budget == Budget(steps=600, batch_size=64)
