"""The Locatello et al. 2019 preset: the study's grid as disentanglement_lib configures it,
sliceable in one command, and the network and annealing schedule it needs."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from dbench.errors import UserError
from dbench.models.nets import build_nets
from dbench.registry import MODELS
from dbench.sweep.plan import expand
from dbench.sweep.presets import load_preset, preset_requests, spread

STRENGTH = {"beta-VAE": "beta", "AnnealedVAE": "c_max", "FactorVAE": "gamma",
            "DIP-VAE-I": "lambda_od", "DIP-VAE-II": "lambda_od", "beta-TCVAE": "beta"}  # fmt: skip


def test_the_full_study_is_twelve_thousand_six_hundred_models():
    plans = expand(preset_requests(load_preset("locatello2019")))
    assert len(plans) == 6 * 6 * 50 * 7 == 12_600
    per_method = Counter((p.label.split(" ")[0], p.config.dataset) for p in plans)
    assert set(per_method.values()) == {6 * 50}
    c = plans[0].config
    assert c.budget.steps == 300_000 and c.budget.batch_size == 64
    assert c.model_kwargs["arch"] == "locatello" and c.model_kwargs["lr"] == 1e-4
    assert c.model_kwargs["decoder"] == "bernoulli" and c.model_kwargs["latent_dim"] == 10


def test_the_grid_is_the_papers():
    plans = expand(preset_requests(load_preset("locatello2019"), dataset="dsprites", seeds=[0]))
    values: dict[str, set] = {}
    for p in plans:
        method = p.label.split(" ")[0]
        kw = p.config.model_kwargs
        key = STRENGTH[method]
        values.setdefault(method, set()).add(kw[key])
    assert values == {
        "beta-VAE": {1, 2, 4, 6, 8, 16},
        "AnnealedVAE": {5, 10, 25, 50, 75, 100},
        "FactorVAE": {10, 20, 30, 40, 50, 100},
        "DIP-VAE-I": {1, 2, 5, 10, 20, 50},
        "DIP-VAE-II": {1, 2, 5, 10, 20, 50},
        "beta-TCVAE": {1, 2, 4, 6, 8, 10},
    }
    dip = {p.config.model_kwargs["kind"] for p in plans if p.label.startswith("DIP")}
    assert dip == {"i", "ii"}
    # lambda_d: 10 lambda_od for DIP-VAE-I, lambda_od for DIP-VAE-II (disentanglement_lib)
    assert MODELS.create("dipvae", kind="i", lambda_od=5).get_params()["lambda_d"] is None
    assert MODELS.create("dipvae", kind="i", lambda_od=5)._lambda_d() == 50
    assert MODELS.create("dipvae", kind="ii", lambda_od=5)._lambda_d() == 5


def test_a_slice_is_one_call_spanning_each_grid():
    preset = load_preset("locatello2019")
    plans = expand(preset_requests(preset, dataset="dsprites", grid_points=3, seeds=[0, 1, 2],
                                   steps=2000))  # fmt: skip
    assert len(plans) == 6 * 3 * 3
    betas = sorted({p.config.model_kwargs["beta"] for p in plans if p.label.startswith("beta-VAE")})
    assert betas == [1, 4, 16]  # both ends of the paper's range and one between
    assert {p.config.budget.steps for p in plans} == {2000}
    two = expand(preset_requests(preset, dataset="dsprites,shapes3d", grid_points=1, seeds=[0]))
    assert Counter(p.config.dataset for p in two) == {"dsprites": 6, "shapes3d": 6}
    assert spread([1, 2, 3, 4, 5], 2) == [1, 5] and spread([1, 2], 5) == [1, 2]
    with pytest.raises(UserError, match="positive"):
        preset_requests(preset, grid_points=0)


def test_the_locatello_network_has_the_studys_shapes():
    enc, dec = build_nets("locatello", (3, 64, 64), 10)
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size[0], m.stride[0]) for m in convs] == [
        (32, 4, 2), (32, 4, 2), (64, 2, 2), (64, 2, 2)
    ]  # fmt: skip
    linears = [m for m in enc.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(1024, 256), (256, 20)]
    assert enc(torch.rand(2, 3, 64, 64)).shape == (2, 20)
    assert dec(torch.rand(2, 10)).shape == (2, 3, 64, 64)
    deconvs = [m.out_channels for m in dec.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert deconvs == [64, 32, 32, 3]


def test_annealing_over_a_fraction_of_the_budget():
    from dbench.contracts import Budget, FitContext

    model = MODELS.create("annealedvae", anneal_fraction=1 / 3, arch="mlp")
    seen = {}

    def stop(self, sim, rng, ctx):  # the VAE's own fit is not needed to see the schedule
        seen["anneal_steps"] = model.anneal_steps_
        return self

    from dbench.models.vae import VAE

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(VAE, "fit", stop)
        model.fit(None, None, FitContext(budget=Budget(steps=300_000, batch_size=64)))
    assert seen["anneal_steps"] == 100_000  # disentanglement_lib's iteration_threshold
    with pytest.raises(UserError, match="anneal_fraction"):
        MODELS.create("annealedvae", anneal_fraction=1.5)
