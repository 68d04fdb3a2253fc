"""Weak supervision from pairs (Locatello et al. 2020): pair sampling, the objectives of
Ada-GVAE, Ada-ML-VAE and the known-k group VAE against float64 hand computations, the pair
batches, refusals, exact resume.

The references are written from the papers' formulas in numpy, independently of
:mod:`dbench.models.objectives`:

* the distance between a pair's posteriors, per latent: ``delta_i = KL(N(m1, s1^2) || N(m2,
  s2^2)) = log(s2 / s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2``;
* the adaptive threshold: latent i is shared when ``delta_i < (max delta + min delta) / 2``;
  with k known, all but the k latents of largest delta are shared;
* GVAE (Hosoya 2019): the shared latents take ``m = (m1 + m2) / 2``, ``s^2 = (s1^2 + s2^2) / 2``;
* ML-VAE (Bouchacourt et al. 2018): the normalised product of the two Gaussians, checked
  against the product of the densities on a grid of points;
* the loss: per pair, ``sum_j recon(x_j) + beta * KL(q~(z|x_j) || N(0, I))``, averaged over
  pairs, z sampled from the aggregated posterior q~.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dbench.contracts import Budget, FitContext, PairSampler
from dbench.datasets.base import GridSimulator
from dbench.errors import UserError
from dbench.models import objectives as obj
from dbench.models.training import CHECKPOINT, LoopSettings
from dbench.registry import MODELS
from dbench.testing import assert_passed, check_dataset, failures
from tests._toy import ToyGrey, ToySquares, ToyTwoSquares
from tests.test_losses import RecordingStep, TinyBits, f32, ref_recon

M, D, SIDE = 5, 4, 16  # pairs, latents, image side (TinyBits' 1 x 16 x 16)
TOL = dict(rtol=1e-5, atol=1e-5)
WEAK = ("adagvae", "adamlvae", "groupvae")


def pair_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    """A fixed batch of M pairs: posteriors of both images (some latents close, so a few are
    shared and a few not), binary images and decoder logits for all 2M images."""
    rng = np.random.default_rng(seed)
    mu1 = rng.normal(size=(M, D))
    logvar1 = rng.uniform(-1.5, 0.5, size=(M, D))
    near = rng.uniform(size=(M, D)) < 0.5
    mu2 = np.where(near, mu1 + rng.normal(scale=0.05, size=(M, D)), rng.normal(size=(M, D)))
    logvar2 = np.where(near, logvar1 + 0.05, rng.uniform(-1.5, 0.5, size=(M, D)))
    x = (rng.uniform(size=(2 * M, 1, SIDE, SIDE)) < 0.4).astype(np.float64)
    logits = rng.normal(scale=2.0, size=(2 * M, 1, SIDE, SIDE))
    v1 = rng.integers(0, 5, size=(M, 2))
    v2 = v1.copy()
    v2[:, 0] = (v1[:, 0] + 1) % 5  # every pair changes factor 0 ...
    v2[::2, 1] = (v1[::2, 1] + 3) % 7  # ... and every other pair factor 1 too
    return dict(
        mu1=mu1, logvar1=logvar1, mu2=mu2, logvar2=logvar2, x=x, logits=logits, v1=v1, v2=v2
    )


# -- the papers' formulas, float64 ----------------------------------------------------------


def ref_delta(m1, lv1, m2, lv2) -> np.ndarray:
    s1, s2 = np.exp(0.5 * lv1), np.exp(0.5 * lv2)
    return np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def ref_adaptive(delta: np.ndarray) -> np.ndarray:
    out = np.zeros(delta.shape, dtype=bool)
    for p, row in enumerate(delta):
        tau = (max(row) + min(row)) / 2
        out[p] = [d < tau for d in row]
    return out


def ref_known_k(delta: np.ndarray, k: np.ndarray) -> np.ndarray:
    out = np.ones(delta.shape, dtype=bool)
    for p, row in enumerate(delta):
        changed = sorted(range(len(row)), key=lambda i: -row[i])[: k[p]]
        out[p, changed] = False
    return out


def ref_gvae(m1, lv1, m2, lv2) -> tuple[np.ndarray, np.ndarray]:
    return (m1 + m2) / 2, np.log((np.exp(lv1) + np.exp(lv2)) / 2)


def ref_poe(m1, lv1, m2, lv2) -> tuple[np.ndarray, np.ndarray]:
    v1, v2 = np.exp(lv1), np.exp(lv2)
    var = 1.0 / (1.0 / v1 + 1.0 / v2)
    return var * (m1 / v1 + m2 / v2), np.log(var)


def ref_kl_prior(mu, logvar) -> np.ndarray:
    """(n,) KL(N(mu, s^2) || N(0, I)) summed over latents."""
    return (0.5 * (mu**2 + np.exp(logvar) - 1.0 - logvar)).sum(1)


def ref_posteriors(name: str, t: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The aggregated posteriors (2M, D) of [x1; x2] and the shared mask (M, D)."""
    m1, lv1, m2, lv2 = t["mu1"], t["logvar1"], t["mu2"], t["logvar2"]
    delta = ref_delta(m1, lv1, m2, lv2)
    if name == "groupvae":
        shared = ref_known_k(delta, (t["v1"] != t["v2"]).sum(1))
    else:
        shared = ref_adaptive(delta)
    am, alv = (ref_poe if name == "adamlvae" else ref_gvae)(m1, lv1, m2, lv2)
    mu = np.concatenate([np.where(shared, am, m1), np.where(shared, am, m2)])
    logvar = np.concatenate([np.where(shared, alv, lv1), np.where(shared, alv, lv2)])
    return mu, logvar, shared


# -- each objective function against its formula -------------------------------------------


def test_kl_between_posteriors_matches_the_formula():
    t = pair_tensors()
    got = obj.kl_between(*(torch.tensor(t[k]) for k in ("mu1", "logvar1", "mu2", "logvar2")))
    want = ref_delta(t["mu1"], t["logvar1"], t["mu2"], t["logvar2"])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    assert (want >= 0).all() and want.max() > 0.1


def test_adaptive_threshold_is_the_midpoint_of_the_largest_and_smallest_distance():
    delta = np.array([[0.1, 5.0, 0.2, 4.0], [1.0, 1.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    got = obj.adaptive_shared(torch.tensor(delta)).numpy()
    # tau = 2.55, 1.5 and 2.0: shared are the latents strictly below it
    want = np.array([[1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 0, 0]], dtype=bool)
    assert np.array_equal(got, want) and np.array_equal(ref_adaptive(delta), want)
    t = pair_tensors()
    delta = ref_delta(t["mu1"], t["logvar1"], t["mu2"], t["logvar2"])
    got = obj.adaptive_shared(torch.tensor(delta)).numpy()
    assert np.array_equal(got, ref_adaptive(delta))
    assert 0 < got.sum() < got.size  # some latents shared, some not


def test_known_k_shares_all_but_the_k_latents_that_moved_most():
    delta = np.array([[0.1, 5.0, 0.2, 4.0], [1.0, 0.5, 3.0, 0.0]])
    got = obj.known_k_shared(torch.tensor(delta), torch.tensor([1, 3])).numpy()
    want = np.array([[1, 0, 1, 1], [0, 0, 0, 1]], dtype=bool)
    assert np.array_equal(got, want)
    assert np.array_equal(ref_known_k(delta, np.array([1, 3])), want)


def test_gvae_averages_means_and_variances():
    t = pair_tensors()
    args = [torch.tensor(t[k]) for k in ("mu1", "logvar1", "mu2", "logvar2")]
    mu, logvar = obj.gvae_average(*args)
    want_mu, want_lv = ref_gvae(t["mu1"], t["logvar1"], t["mu2"], t["logvar2"])
    np.testing.assert_allclose(mu.numpy(), want_mu, rtol=1e-12)
    np.testing.assert_allclose(np.exp(logvar.numpy()), np.exp(want_lv), rtol=1e-12)


def test_mlvae_is_the_normalised_product_of_the_two_gaussians():
    t = pair_tensors()
    args = [torch.tensor(t[k]) for k in ("mu1", "logvar1", "mu2", "logvar2")]
    mu, logvar = obj.product_of_experts(*args)
    want_mu, want_lv = ref_poe(t["mu1"], t["logvar1"], t["mu2"], t["logvar2"])
    np.testing.assert_allclose(mu.numpy(), want_mu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(logvar.numpy(), want_lv, rtol=1e-12, atol=1e-12)
    # independently: the product of the two densities, normalised on a fine grid, has that
    # mean and variance (one latent of one pair)
    m1, m2 = t["mu1"][0, 0], t["mu2"][0, 0]
    s1, s2 = math.exp(0.5 * t["logvar1"][0, 0]), math.exp(0.5 * t["logvar2"][0, 0])
    grid = np.linspace(-12, 12, 400_001)
    dens = np.exp(-0.5 * ((grid - m1) / s1) ** 2 - 0.5 * ((grid - m2) / s2) ** 2)
    dens /= dens.sum()
    mean = (grid * dens).sum()
    np.testing.assert_allclose(float(mu[0, 0]), mean, atol=1e-6)
    np.testing.assert_allclose(math.exp(float(logvar[0, 0])), ((grid - mean) ** 2 * dens).sum())


# -- the whole train step, with stub nets ---------------------------------------------------


def make_model(name: str, **kwargs):
    model = MODELS.create(name, latent_dim=D, arch="burgess", **kwargs)
    model.setup(TinyBits(), torch.device("cpu"), torch.Generator().manual_seed(0))
    return model


@pytest.mark.parametrize("decoder", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("beta", [1.0, 4.0])
@pytest.mark.parametrize("name", WEAK)
def test_train_step_loss_matches_the_paper(name, beta, decoder):
    """Encoder and decoder return fixed outputs, the pairs are fixed; the aggregation, the
    sampling, the pixel sums, the sum over each pair and the mean over pairs are the model's."""
    model = make_model(name, beta=beta, decoder=decoder)
    t = pair_tensors(1)
    x = f32(t["x"])
    h = f32(
        np.concatenate(
            [
                np.concatenate([t["mu1"], t["logvar1"]], axis=1),
                np.concatenate([t["mu2"], t["logvar2"]], axis=1),
            ]
        )
    )
    seen = []
    model._enc = lambda xb: (seen.append(xb), h.clone())[1]
    zs = []
    model._dec = lambda z: (zs.append(z.detach().clone()), f32(t["logits"]))[1]
    model.pairs = lambda step: (x[:M], x[M:], t["v1"], t["v2"])

    seed = 7
    step = RecordingStep(x[:M], 0, seed)  # batch_size M pairs
    logs = model.train_step(step)
    assert torch.equal(seen[0], x)  # both images of every pair, encoded together

    mu, logvar, shared = ref_posteriors(name, t)
    eps = torch.randn((2 * M, D), generator=torch.Generator().manual_seed(seed)).double()
    np.testing.assert_allclose(
        zs[0].double().numpy(), mu + np.exp(0.5 * logvar) * eps.numpy(), **TOL
    )
    recon = ref_recon(t["logits"], t["x"], decoder) * 2 * M  # summed over all 2M images
    kl = ref_kl_prior(mu, logvar).sum()
    loss = (recon + beta * kl) / M  # per pair: the sum over its two images; mean over pairs
    np.testing.assert_allclose(float(logs["loss"]), loss, **TOL)
    np.testing.assert_allclose(step.calls[0][0], loss, **TOL)
    assert step.calls[0][1] is model._optimizers["vae"]
    np.testing.assert_allclose(float(logs["recon"]), recon / (2 * M), **TOL)
    np.testing.assert_allclose(float(logs["kl"]), kl / (2 * M), **TOL)
    np.testing.assert_allclose(float(logs["shared_latents"]), shared.sum(1).mean(), **TOL)
    assert 0 < shared.sum() < shared.size


def test_the_aggregation_changes_the_loss():
    """Every part matters on the fixed batch: GVAE, ML-VAE and known k give three losses."""
    t = pair_tensors(1)
    losses = set()
    for name in WEAK:
        mu, logvar, _ = ref_posteriors(name, t)
        losses.add(round(float(ref_kl_prior(mu, logvar).sum()), 6))
    assert len(losses) == 3


# -- pair sampling --------------------------------------------------------------------------


class WithConstant(GridSimulator):
    """A grid with a single-valued factor in the middle (as dSprites' colour is elsewhere)."""

    name = "with_constant"
    factor_names = ("a", "colour", "b", "c")
    factor_sizes = (4, 1, 2, 5)
    observation_shape = (1, 4, 4)

    def sim(self, v, w=None):  # pragma: no cover - pairs only
        raise AssertionError


@pytest.mark.parametrize("k", [1, 2, 3])
def test_pairs_differ_in_exactly_k_factors_that_vary(k):
    sim = WithConstant()
    assert isinstance(sim, PairSampler)
    v1, v2 = sim.sample_pairs(4000, k, np.random.default_rng(0))
    differ = v1 != v2
    assert (differ.sum(1) == k).all()
    assert not differ[:, 1].any()  # the constant factor never changes
    # v1 and v2 are uniform over the grid; each varying factor is chosen k/3 of the time
    for v in (v1, v2):
        for j, size in enumerate(sim.factor_sizes):
            freq = np.bincount(v[:, j], minlength=size) / len(v)
            np.testing.assert_allclose(freq, 1 / size, atol=0.035)
    np.testing.assert_allclose(differ[:, [0, 2, 3]].mean(0), k / 3, atol=0.035)


def test_random_k_is_uniform_over_1_to_d_minus_1():
    sim = WithConstant()  # d = 3 factors vary: k in {1, 2}
    v1, v2 = sim.sample_pairs(4000, None, np.random.default_rng(1))
    counts = np.bincount((v1 != v2).sum(1), minlength=4)
    assert counts[0] == 0 and counts[3] == 0
    np.testing.assert_allclose(counts[1:3] / 4000, 0.5, atol=0.03)


def test_pairs_refuse_a_k_out_of_range():
    with pytest.raises(ValueError, match="k must be in 1..3"):
        WithConstant().sample_pairs(3, 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="k must be in 1..3"):
        WithConstant().sample_pairs(3, 0, np.random.default_rng(0))


def test_the_dataset_check_covers_pairs():
    assert_passed(check_dataset(ToySquares(size=16)))

    class NeverDiffers(ToySquares):
        def sample_pairs(self, n, k, rng):
            v = self.sample_factors(n, rng)
            return v, v.copy()

    bad = failures(check_dataset(NeverDiffers(size=16)))
    assert [r.name for r in bad] == ["sample_pairs"]
    assert "differs in no factor" in bad[0].message


# -- the pair batches -----------------------------------------------------------------------


class StubStep:
    def __init__(self, table, n=12, seed=5):
        self.gen = torch.Generator().manual_seed(seed)
        self.table = table
        self.batch_size = n


@pytest.mark.parametrize("k", [1, 2, "random"])
def test_pair_batches_from_the_table_are_the_rendered_pairs(k):
    sim = ToySquares(size=16)
    model = MODELS.create("adagvae", latent_dim=3, k=k)
    model.setup(sim, torch.device("cpu"), torch.Generator().manual_seed(0))
    x1, x2, v1, v2 = model.pairs(StubStep(sim.compact_table()))
    r1, r2, w1, w2 = model.pairs(StubStep(None))
    assert np.array_equal(v1, w1) and np.array_equal(v2, w2)
    assert torch.equal(x1, r1) and torch.equal(x2, r2)
    assert torch.equal(x1, sim.sim(v1)) and torch.equal(x2, sim.sim(v2))
    count = (v1 != v2).sum(1)
    assert (count == k).all() if k != "random" else ((count >= 1) & (count <= 2)).all()
    assert all(not torch.equal(a, b) for a, b in zip(x1, x2, strict=True))


def test_pairs_with_a_nuisance_draw_one_per_image():
    sim = ToyGrey(size=16)
    model = MODELS.create("adagvae", latent_dim=3, k=1)
    model.setup(sim, torch.device("cpu"), torch.Generator().manual_seed(0))
    x1, x2, v1, v2 = model.pairs(StubStep(None, n=6))
    brightness = torch.cat([x1, x2]).flatten(1).amax(1)
    assert len(set(brightness.tolist())) == 12


# -- refusals, before any training step ------------------------------------------------------


class NoPairs:
    """Labelled data without pairs (as emnist_letters or arrays)."""

    name = "nopairs"
    factor_names = ("letter",)
    factor_sizes = (4,)
    observation_shape = (1, 16, 16)
    has_nuisance = True
    binary = True

    def sample_factors(self, n, rng):
        return rng.integers(0, 4, size=(n, 1))

    def sample_nuisance(self, n, rng):
        return rng.random(n)

    def sim(self, v, w=None):  # pragma: no cover - never reached
        raise AssertionError("refused before rendering")

    def describe(self):
        return {"source": "test", "checksum": "x"}


def _ctx(steps=8, batch=8, **kwargs) -> FitContext:
    return FitContext(budget=Budget(steps, batch), **kwargs)


@pytest.mark.parametrize("name", WEAK)
def test_a_dataset_without_pairs_is_refused_in_one_line(name):
    with pytest.raises(UserError) as err:
        MODELS.create(name, latent_dim=3).fit(NoPairs(), np.random.default_rng(0), _ctx(1))
    assert "\n" not in str(err.value) and "'nopairs' cannot draw them" in str(err.value)


def test_a_k_larger_than_the_varying_factors_is_refused():
    with pytest.raises(UserError, match="k=4 but 'toy_squares' has 3"):
        MODELS.create("adagvae", latent_dim=3, k=4).fit(
            ToySquares(size=16), np.random.default_rng(0), _ctx(1)
        )
    for bad in (0, -1, "rnd", 1.5, True):
        with pytest.raises(UserError, match="k must be a positive integer or 'random'"):
            MODELS.create("adagvae", k=bad)


# -- the loop: exact resume ----------------------------------------------------------------


class Crash(Exception):
    pass


@pytest.mark.parametrize("name", ["adagvae", "adamlvae"])
def test_resume_after_crash_is_bit_identical(tmp_path, name, one_thread):
    sim = ToySquares(size=16)
    fast = LoopSettings(log_every=2, report_every=2, checkpoint_every=4, eval_sample=32)

    def model():
        m = MODELS.create(name, latent_dim=3)
        m.loop = fast
        return m

    whole = model().fit(sim, np.random.default_rng(3), _ctx())

    def crash_after_six(step, **_):
        if step == 6:
            raise Crash

    with pytest.raises(Crash):
        model().fit(sim, np.random.default_rng(3), _ctx(workdir=tmp_path, report=crash_after_six))
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["step"] == 4
    resumed = model().fit(sim, np.random.default_rng(3), _ctx(workdir=tmp_path, resume=True))
    assert resumed.fit_info_["resumed_from_step"] == 4
    for (k, a), (_, b) in zip(
        whole.encoder_.state_dict().items(), resumed.encoder_.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    assert whole.fit_info_["recon_loss"] == resumed.fit_info_["recon_loss"]
    assert whole.fit_info_["k"] == "random" and whole.fit_info_["aggregation"] in ("gvae", "mlvae")


# -- the preset -----------------------------------------------------------------------------


def test_the_locatello2020_preset_is_the_papers_grid_and_slices():
    from dbench.sweep.plan import expand
    from dbench.sweep.presets import load_preset, preset_requests

    preset = load_preset("locatello2020")
    plans = expand(preset_requests(preset))
    # (2 weak methods x 6 betas x 2 k + beta-VAE x 6 betas) x 10 seeds x 5 datasets
    assert len(plans) == (2 * 6 * 2 + 6) * 10 * 5 == 1500
    grid = {}
    for p in plans:
        kw = p.config.model_kwargs
        grid.setdefault(p.config.model, set()).add((kw["beta"], kw.get("k")))
        assert p.config.budget.steps == 300_000 and p.config.budget.batch_size == 64
        assert kw["arch"] == "locatello" and kw["decoder"] == "bernoulli" and kw["lr"] == 1e-4
    betas = (1, 2, 4, 6, 8, 16)
    weak = {(b, k) for b in betas for k in (1, "random")}
    assert grid == {"adagvae": weak, "adamlvae": weak, "betavae": {(b, None) for b in betas}}
    assert {p.config.dataset for p in plans} == {
        "dsprites", "smallnorb", "cars3d", "shapes3d", "mpi3d_real"
    }  # fmt: skip

    piece = expand(
        preset_requests(preset, dataset="dsprites", seeds=[0, 1, 2], grid_points=3, steps=2000)
    )
    assert len(piece) == (2 * 3 * 2 + 3) * 3 == 45
    assert {p.config.model_kwargs["beta"] for p in piece} == {1, 4, 16}
    assert {p.config.budget.steps for p in piece} == {2000}

    # the beta-VAE rows are locatello2019's runs: same configuration, so the same run ids
    def betavae(name):
        plans = expand(preset_requests(load_preset(name), dataset="dsprites", seeds=[0]))
        return {
            (p.config.model_kwargs["beta"], str(p.config.budget), str(p.config.model_kwargs))
            for p in plans
            if p.config.model == "betavae"
        }

    assert betavae("locatello2020") == betavae("locatello2019")


# -- learning: weak supervision identifies what the unsupervised model cannot ----------------

#: On ToyTwoSquares the two factors are orthogonal pixel directions of equal length, so with
#: two latents the unsupervised beta-VAE ends in a rotation of them set by chance (its MIG is
#: high only where the rotation happens to be near an axis), while Ada-GVAE, seeing pairs that
#: differ in one brightness, finds the axes. Measured on this project's CPU (AMD EPYC, one
#: thread, fp32 as in the tests; mlp nets, lr 1e-3, batch 64; MIG with the fast settings),
#: seeds 0-5, 1,000 steps: Ada-GVAE (k=1) .73/.76/.80/.82/.77/.78, beta-VAE (beta 1, the same
#: budget) .39/.26/.51/.05/.41/.32; 2,000 steps: .86/.77/.87/.94/.96/.82 against
#: .49/.39/.57/.03/.45/.40. Since the unsupervised rotation is chance, one seed of it can land
#: near an axis: the check compares the means over seeds 0-2 (a margin of 0.2 where 0.38 was
#: measured; the three luckiest beta-VAE seeds of the six would still leave 0.31) and asks
#: every Ada-GVAE seed to be near the axes (above 0.65; 0.73-0.82 measured). About 40 s.
#: Earlier toys (one square's scale and position; squares moved along the diagonals; squares
#: whose positions correlate; overlapping grey squares) gave no margin: where the factors'
#: pixel directions differ in length or are not orthogonal, the beta-VAE's axes follow the
#: data's principal directions and the adaptive threshold shares the same latent for every
#: factor, so pairs do not rotate the code at this budget.
LEARN_SEEDS, LEARN_STEPS, LEARN_BATCH = (0, 1, 2), 1000, 64
LEARN_MARGIN, LEARN_AXES = 0.2, 0.65


def _mig(name: str, seed: int, **kwargs) -> float:
    from dbench.registry import METRICS
    from dbench.representation import Representation

    sim = ToyTwoSquares()
    model = MODELS.create(name, latent_dim=2, arch="mlp", lr=1e-3, **kwargs)
    model.loop = LoopSettings(eval_sample=256)
    ctx = FitContext(budget=Budget(LEARN_STEPS, LEARN_BATCH))
    model.fit(sim, np.random.default_rng(seed), ctx)
    rep = Representation(sim, model.encode)
    return METRICS.get("mig")(sim, rep, np.random.default_rng(1000 + seed), fast=True)["mig"]


def test_weak_supervision_separates_factors_better_than_beta_vae(one_thread):
    weak = [_mig("adagvae", seed, k=1) for seed in LEARN_SEEDS]
    unsupervised = [_mig("betavae", seed, beta=1.0) for seed in LEARN_SEEDS]
    assert min(weak) > LEARN_AXES, (weak, unsupervised)
    assert np.mean(weak) > np.mean(unsupervised) + LEARN_MARGIN, (weak, unsupervised)


def test_the_readme_table_is_what_the_leaderboard_prints_on_the_committed_records(capsys):
    """results/studies/weak (Ada-GVAE vs beta-VAE on dSprites): the README quotes the
    leaderboard printed from the committed records, verbatim."""
    from tests._cli import cli

    root = Path(__file__).resolve().parents[1]
    code, out, err = cli(capsys, "leaderboard", "--results-dir",
                         str(root / "results/studies/weak"), "--format", "markdown")  # fmt: skip
    assert code == 0, err
    assert "adagvae" in out and "betavae" in out
    assert out.strip() in (root / "README.md").read_text()
