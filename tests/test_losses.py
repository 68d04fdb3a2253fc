"""Loss wiring: every VAE-family objective, computed by hand from its paper, equals the model's.

The references below are written from the papers' formulas in float64 numpy, independently of
:mod:`dbench.models.objectives`:

* beta-VAE (Higgins et al. 2017, Eq. 4): ``recon + beta * KL``;
* AnnealedVAE (Burgess et al. 2018, Eq. 8): ``recon + gamma * |KL - C|``, C linear in the step;
* beta-TCVAE (Chen et al. 2018, Eq. 4 with alpha = gamma = 1): ``recon + KL + (beta - 1) TC``,
  TC by minibatch-weighted sampling (Sec. 3.1: ``log q(z_i) ~ logsumexp_j log q(z_i|x_j) -
  log(N M)``, and likewise per dimension);
* DIP-VAE-I/II (Kumar et al. 2018, Eqs. 6-7): ``recon + KL + lambda_od sum_{i!=j} C_ij^2 +
  lambda_d sum_i (C_ii - 1)^2`` with ``C = Cov[mu]`` (I) or ``Cov[mu] + E[diag sigma^2]`` (II);
* FactorVAE (Kim & Mnih 2018, Algorithm 1): ``recon + KL + gamma TC`` with ``TC ~ E[log
  D(z) / (1 - D(z))]``, and the discriminator's loss, the cross-entropy of q(z) samples
  (class 0) against dimension-wise permuted samples (class 1).

Two levels: ``model.loss(step, parts)`` on fixed tensors (mu, logvar, z, recon, KL), and a whole
``train_step`` with the encoder and decoder replaced by stubs that return fixed mu/logvar and
decoder logits, so the pixel sums, batch means and sampling in between are checked too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dbench.datasets.base import GridSimulator
from dbench.models import objectives
from dbench.models.training import Step
from dbench.models.vae import VAE
from dbench.registry import MODELS

M, D, SIDE = 6, 3, 16  # batch, latents, image side (1 x 16 x 16 images)
TOL = dict(rtol=1e-5, atol=1e-5)


class TinyBits(GridSimulator):
    """35 binary 16 x 16 images; only its sizes matter here (the batch is fixed)."""

    name = "tinybits"
    factor_names = ("a", "b")
    factor_sizes = (5, 7)
    observation_shape = (1, SIDE, SIDE)
    binary = True

    def sim(self, v, w=None):  # pragma: no cover - never rendered: batches are fixed
        raise AssertionError("the loss tests use a fixed batch")


def fixed_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    """A fixed tiny batch: correlated means (so DIP's off-diagonal terms are far from 0),
    log variances, a sample z, binary images x and decoder logits."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(M, 1))
    mu = 0.8 * base + rng.normal(scale=0.7, size=(M, D))
    logvar = rng.uniform(-1.5, 0.5, size=(M, D))
    z = mu + np.exp(0.5 * logvar) * rng.normal(size=(M, D))
    x = (rng.uniform(size=(M, 1, SIDE, SIDE)) < 0.4).astype(np.float64)
    logits = rng.normal(scale=2.0, size=(M, 1, SIDE, SIDE))
    return {"mu": mu, "logvar": logvar, "z": z, "x": x, "logits": logits}


# -- the papers' formulas, float64 ----------------------------------------------------------


def ref_recon(logits: np.ndarray, x: np.ndarray, kind: str) -> float:
    """Negative log-likelihood per image summed over pixels, averaged over the batch."""
    if kind == "bernoulli":
        # -[x log s(l) + (1 - x) log(1 - s(l))], log s(l) = -log(1 + e^-l)
        nll = x * np.logaddexp(0.0, -logits) + (1 - x) * np.logaddexp(0.0, logits)
    else:  # disentanglement_lib's "l2": squared error of the sigmoid mean
        nll = (1.0 / (1.0 + np.exp(-logits)) - x) ** 2
    return float(nll.reshape(len(x), -1).sum(1).mean())


def ref_kl(mu: np.ndarray, logvar: np.ndarray) -> float:
    """KL(N(mu, sigma^2) || N(0, 1)) summed over latents, averaged over the batch."""
    var = np.exp(logvar)
    return float((0.5 * (mu**2 + var - 1.0 - logvar)).sum(1).mean())


def log_normal(z: float, mean: float, logvar: float) -> float:
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mean) ** 2 / math.exp(logvar))


def ref_tc_mws(z: np.ndarray, mu: np.ndarray, logvar: np.ndarray, n_data: int) -> float:
    """Chen et al. 2018, minibatch-weighted sampling, written out with explicit loops."""
    m, d = z.shape
    log_nm = math.log(n_data * m)
    total = 0.0
    for i in range(m):
        joint = [
            sum(log_normal(z[i, k], mu[j, k], logvar[j, k]) for k in range(d)) for j in range(m)
        ]
        log_qz = float(np.logaddexp.reduce(joint)) - log_nm
        log_marginals = 0.0
        for k in range(d):
            per_j = [log_normal(z[i, k], mu[j, k], logvar[j, k]) for j in range(m)]
            log_marginals += float(np.logaddexp.reduce(per_j)) - log_nm
        total += log_qz - log_marginals
    return total / m


def ref_dip_parts(mu: np.ndarray, logvar: np.ndarray, kind: str) -> tuple[float, float]:
    """(sum of squared off-diagonal entries, sum of squared diagonal deviations from 1) of the
    DIP-VAE covariance: Cov_x[mu(x)] (I), plus E_x[diag sigma^2(x)] (II)."""
    cov = np.cov(mu, rowvar=False, bias=True)
    if kind == "ii":
        cov = cov + np.diag(np.exp(logvar).mean(0))
    off = cov - np.diag(np.diag(cov))
    return float((off**2).sum()), float(((np.diag(cov) - 1.0) ** 2).sum())


def ref_capacity(step: int, c_max: float, anneal_steps: int) -> float:
    """Burgess et al. 2018: C grows linearly from 0 to C_max over the annealing steps."""
    return c_max * min(step / anneal_steps, 1.0)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def disc_logits(model, z: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.discriminator_(torch.tensor(z, dtype=torch.float32)).double().numpy()


def ref_factor_tc(model, z: np.ndarray) -> float:
    """Kim & Mnih 2018: TC ~ E[log D(z) - log(1 - D(z))], D(z) = P(class "from q(z)")."""
    logp = log_softmax(disc_logits(model, z))
    return float((logp[:, 0] - logp[:, 1]).mean())


def ref_disc_loss(model, z_real: np.ndarray, z_perm: np.ndarray) -> float:
    """Cross-entropy: q(z) samples are class 0, permuted samples class 1 (mean over both)."""
    real = log_softmax(disc_logits(model, z_real))[:, 0]
    perm = log_softmax(disc_logits(model, z_perm))[:, 1]
    return float(-(real.sum() + perm.sum()) / (len(real) + len(perm)))


# -- the objectives under test: model, kwargs and the paper's total --------------------------

ANNEAL = 100


def ref_terms(name: str, model, t: dict[str, np.ndarray], step: int, kind: str) -> dict:
    """Every term of objective ``name`` at ``step`` and the total the paper asks for."""
    recon = ref_recon(t["logits"], t["x"], kind)
    kl = ref_kl(t["mu"], t["logvar"])
    out = {"recon": recon, "kl": kl}
    if name in ("vae", "betavae", "vae_untrained"):
        out["loss"] = recon + model.beta * kl
    elif name == "annealedvae":
        c = ref_capacity(step, model.c_max, model.anneal_steps_)
        out.update(capacity=c, loss=recon + model.gamma * abs(kl - c))
    elif name == "betatcvae":
        tc = ref_tc_mws(t["z"], t["mu"], t["logvar"], TinyBits().num_observations)
        out.update(tc=tc, loss=recon + kl + (model.beta - 1.0) * tc)
    elif name == "dipvae":
        off, diag = ref_dip_parts(t["mu"], t["logvar"], model.kind)
        lambda_d = model.lambda_d
        if lambda_d is None:  # the paper's defaults: 10 x lambda_od (I), lambda_od (II)
            lambda_d = 10 * model.lambda_od if model.kind == "i" else model.lambda_od
        dip = model.lambda_od * off + lambda_d * diag
        out.update(dip=dip, loss=recon + kl + dip)
    elif name == "factorvae":
        tc = ref_factor_tc(model, t["z"])
        out.update(tc=tc, loss=recon + kl + model.gamma * tc)
    else:  # pragma: no cover - every case is listed below
        raise KeyError(name)
    return out


# (id, registered model name, kwargs, step index, decoder kind)
CASES = [
    ("vae", "vae", {}, 0, "bernoulli"),
    ("vae_untrained", "vae_untrained", {}, 0, "bernoulli"),
    ("betavae-bernoulli", "betavae", {"beta": 4.0}, 0, "bernoulli"),
    ("betavae-gaussian", "betavae", {"beta": 4.0, "decoder": "gaussian"}, 0, "gaussian"),
    ("annealedvae-step0", "annealedvae", {"anneal_steps": ANNEAL, "c_max": 5.0}, 0, "bernoulli"),
    ("annealedvae-mid", "annealedvae", {"anneal_steps": ANNEAL, "c_max": 5.0}, 37, "bernoulli"),
    ("annealedvae-after", "annealedvae", {"anneal_steps": ANNEAL, "c_max": 5.0}, 250, "bernoulli"),
    ("betatcvae", "betatcvae", {"beta": 6.0}, 0, "bernoulli"),
    ("dipvae-i", "dipvae", {"kind": "i", "lambda_od": 10.0}, 0, "bernoulli"),
    ("dipvae-ii", "dipvae", {"kind": "ii", "lambda_od": 10.0}, 0, "bernoulli"),
    (
        "dipvae-i-own-lambda_d",
        "dipvae",
        {"kind": "i", "lambda_od": 2.0, "lambda_d": 3.0},
        0,
        "bernoulli",
    ),
    ("factorvae", "factorvae", {"gamma": 35.0}, 0, "bernoulli"),
]
CASE_IDS = [c[0] for c in CASES]


def test_every_vae_family_model_has_a_loss_case():
    """The VAE family: the VAE and the variants of :mod:`dbench.models.vae_family`."""
    family = set()
    for name in MODELS.names():
        cls = MODELS.get(name)
        if cls is VAE or getattr(cls, "__module__", "") == "dbench.models.vae_family":
            family.add(name)
    assert family == {c[1] for c in CASES}


def make_model(name: str, kwargs: dict):
    """A model ready for ``loss``/``train_step``: set up on TinyBits (CPU, seeded nets)."""
    model = MODELS.create(name, latent_dim=D, arch="burgess", **kwargs)
    model.setup(TinyBits(), torch.device("cpu"), torch.Generator().manual_seed(0))
    if name == "annealedvae":
        model.anneal_steps_ = model.anneal_steps  # what fit() sets from the kwarg or budget
    return model


class FixedSource:
    """Step's batch source: always the fixed images."""

    device = torch.device("cpu")

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __call__(self, n: int) -> torch.Tensor:
        assert n == len(self.x)
        return self.x.clone()


class RecordingStep(Step):
    """A real Step whose ``optimise`` records (loss, optimizer) instead of updating."""

    def __init__(self, x: torch.Tensor, index: int, seed: int):
        amp = (None, torch.amp.GradScaler("cpu", enabled=False))
        super().__init__(FixedSource(x), len(x), torch.Generator().manual_seed(seed), amp)
        self.index = index
        self.calls: list[tuple[float, object]] = []

    def optimise(self, loss, optimizer) -> None:
        self.calls.append((float(loss.detach()), optimizer))


def num(value) -> float:
    return float(torch.as_tensor(value).detach())


def f32(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float32)


# -- level 1: model.loss on fixed tensors ---------------------------------------------------


def model_loss(model, t: dict[str, np.ndarray], step: int, kind: str, recon=None, kl=None):
    parts = {
        "mu": f32(t["mu"]),
        "logvar": f32(t["logvar"]),
        "z": f32(t["z"]),
        "recon": torch.tensor(recon if recon is not None else ref_recon(t["logits"], t["x"], kind)),
        "kl": torch.tensor(kl if kl is not None else ref_kl(t["mu"], t["logvar"])),
    }
    parts["recon"], parts["kl"] = parts["recon"].float(), parts["kl"].float()
    x = f32(t["x"])
    loss = model.loss(RecordingStep(x, step, 0), parts)
    return float(loss.detach()), parts.get("logs", {})


@pytest.mark.parametrize("case, name, kwargs, step, kind", CASES, ids=CASE_IDS)
def test_loss_on_fixed_tensors_matches_the_paper(case, name, kwargs, step, kind):
    model = make_model(name, kwargs)
    t = fixed_tensors()
    expected = ref_terms(name, model, t, step, kind)
    loss, logs = model_loss(model, t, step, kind)
    np.testing.assert_allclose(loss, expected["loss"], **TOL)
    for term in ("tc", "dip", "capacity"):  # the regulariser the model logs is the paper's
        if term in expected:
            np.testing.assert_allclose(num(logs[term]), expected[term], **TOL)
    # Every term matters here: none of them is zero on this batch.
    assert all(abs(v) > 1e-2 for k, v in expected.items() if k != "capacity" or step), expected


# -- level 2: a whole train_step with stub nets ---------------------------------------------


@pytest.mark.parametrize("case, name, kwargs, step, kind", CASES, ids=CASE_IDS)
def test_train_step_loss_matches_the_paper(case, name, kwargs, step, kind, monkeypatch):
    """Encoder and decoder return fixed outputs; the train step's sampling, pixel sums, batch
    means, loss and the optimisers it hands each loss to are the model's own."""
    model = make_model(name, kwargs)
    assert model.decoder_kind_ == kind
    t = fixed_tensors(1)
    x = f32(t["x"])
    h = f32(np.concatenate([t["mu"], t["logvar"]], axis=1))
    seen = []
    model._enc = lambda xb: (seen.append(xb), h.clone())[1]
    model._dec = lambda z: f32(t["logits"])
    captured = {}
    original_loss = model.loss

    def capture(step_, parts):
        captured.update(parts)
        return original_loss(step_, parts)

    monkeypatch.setattr(model, "loss", capture)
    permuted = []
    real_permute = objectives.permute_dims

    def record_permute(z, gen):
        out = real_permute(z, gen)
        permuted.append((z.detach().clone(), out.detach().clone()))
        return out

    monkeypatch.setattr(objectives, "permute_dims", record_permute)

    seed = 123
    step_ = RecordingStep(x, step, seed)
    logs = model.train_step(step_)

    # z = mu + sigma * eps with eps the step generator's standard normal draws
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn((M, D), generator=gen).double().numpy()
    z = t["mu"] + np.exp(0.5 * t["logvar"]) * eps
    np.testing.assert_allclose(captured["z"].double().numpy(), z, rtol=1e-5, atol=1e-5)
    assert torch.equal(seen[0], x)

    expected = ref_terms(name, model, {**t, "z": captured["z"].double().numpy()}, step, kind)
    for key in ("loss", "recon", "kl", "tc", "dip", "capacity"):
        if key in expected:
            np.testing.assert_allclose(float(logs[key]), expected[key], **TOL, err_msg=key)
    assert step_.calls[0][1] is model._optimizers["vae"]
    np.testing.assert_allclose(step_.calls[0][0], expected["loss"], **TOL)

    if name != "factorvae":
        assert len(step_.calls) == 1 and not permuted
        return
    # Discriminator step: a second batch's z, permuted per dimension (Algorithm 1), against
    # the first batch's z; the loss goes to the discriminator's own optimiser.
    ((z2, z_perm),) = permuted
    eps2 = torch.randn((M, D), generator=gen).double().numpy()
    np.testing.assert_allclose(
        z2.double().numpy(), t["mu"] + np.exp(0.5 * t["logvar"]) * eps2, rtol=1e-5, atol=1e-5
    )
    for k in range(D):  # each dimension shuffled across the batch, values kept
        assert torch.equal(z_perm[:, k].sort().values, z2[:, k].sort().values)
    # ... independently: not a reordering of whole samples (which keeps q(z), not prod q(z_d))
    assert {tuple(r) for r in z_perm.tolist()} != {tuple(r) for r in z2.tolist()}
    d_loss = ref_disc_loss(model, captured["z"].double().numpy(), z_perm.double().numpy())
    np.testing.assert_allclose(float(logs["disc_loss"]), d_loss, **TOL)
    assert len(step_.calls) == 2 and step_.calls[1][1] is model._optimizers["disc"]
    np.testing.assert_allclose(step_.calls[1][0], d_loss, **TOL)


# -- each loss responds to its weight -------------------------------------------------------


def _beta_kl(model, t, step):
    return ref_kl(t["mu"], t["logvar"])


def _annealed_gap(model, t, step):
    return abs(ref_kl(t["mu"], t["logvar"]) - ref_capacity(step, model.c_max, model.anneal_steps_))


def _mws_tc(model, t, step):
    return ref_tc_mws(t["z"], t["mu"], t["logvar"], TinyBits().num_observations)


def _dip_off(model, t, step):
    return ref_dip_parts(t["mu"], t["logvar"], model.kind)[0]


def _dip_diag(model, t, step):
    return ref_dip_parts(t["mu"], t["logvar"], model.kind)[1]


def _factor_tc(model, t, step):
    return ref_factor_tc(model, t["z"])


# (id, model, fixed kwargs, weight, old value, new value, d loss / d weight)
WEIGHTS = [
    ("betavae-beta", "betavae", {}, "beta", 2.0, 4.0, _beta_kl),
    ("vae-beta", "vae", {}, "beta", 1.0, 2.0, _beta_kl),
    (
        "annealedvae-gamma",
        "annealedvae",
        {"anneal_steps": ANNEAL, "c_max": 5.0},
        "gamma",
        500.0,
        1000.0,
        _annealed_gap,
    ),
    ("betatcvae-beta", "betatcvae", {}, "beta", 6.0, 7.0, _mws_tc),
    (
        "dipvae-i-lambda_od",
        "dipvae",
        {"kind": "i", "lambda_d": 5.0},
        "lambda_od",
        2.0,
        4.0,
        _dip_off,
    ),
    (
        "dipvae-ii-lambda_od",
        "dipvae",
        {"kind": "ii", "lambda_d": 5.0},
        "lambda_od",
        2.0,
        4.0,
        _dip_off,
    ),
    (
        "dipvae-i-lambda_d",
        "dipvae",
        {"kind": "i", "lambda_od": 2.0},
        "lambda_d",
        5.0,
        10.0,
        _dip_diag,
    ),
    (
        "dipvae-ii-lambda_d",
        "dipvae",
        {"kind": "ii", "lambda_od": 2.0},
        "lambda_d",
        5.0,
        10.0,
        _dip_diag,
    ),
    ("factorvae-gamma", "factorvae", {}, "gamma", 35.0, 70.0, _factor_tc),
]


@pytest.mark.parametrize(
    "case, name, fixed, weight, old, new, slope", WEIGHTS, ids=[w[0] for w in WEIGHTS]
)
def test_loss_changes_by_exactly_its_weighted_term(case, name, fixed, weight, old, new, slope):
    """Changing one weight moves the loss by (change) x (the term it weights), nothing else."""
    t = fixed_tensors(2)
    step = 40
    before = make_model(name, {**fixed, weight: old})
    after = make_model(name, {**fixed, weight: new})
    if name == "factorvae":  # same discriminator weights for both (seeded setup)
        after.discriminator_.load_state_dict(before.discriminator_.state_dict())
    loss_before, _ = model_loss(before, t, step, "bernoulli")
    loss_after, _ = model_loss(after, t, step, "bernoulli")
    term = slope(before, t, step)
    assert abs(term) > 1e-2
    np.testing.assert_allclose(loss_after - loss_before, (new - old) * term, rtol=1e-4, atol=1e-4)


def test_dip_default_lambda_d_follows_the_paper():
    """lambda_d = 10 lambda_od for DIP-VAE-I and lambda_od for DIP-VAE-II (Kumar et al. 2018)."""
    t = fixed_tensors(3)
    for kind, factor in (("i", 10.0), ("ii", 1.0)):
        default = make_model("dipvae", {"kind": kind, "lambda_od": 3.0})
        explicit = make_model("dipvae", {"kind": kind, "lambda_od": 3.0, "lambda_d": 3.0 * factor})
        assert model_loss(default, t, 0, "bernoulli")[0] == pytest.approx(
            model_loss(explicit, t, 0, "bernoulli")[0], rel=1e-6
        )


def test_capacity_moves_the_annealed_loss_as_the_steps_go():
    """At step s the KL is pulled towards C(s) = C_max min(s / T, 1): the loss at each step is
    recon + gamma |KL - C(s)|, so a KL equal to C(s) costs nothing extra."""
    model = make_model("annealedvae", {"anneal_steps": ANNEAL, "c_max": 5.0, "gamma": 10.0})
    t = fixed_tensors(4)
    recon = ref_recon(t["logits"], t["x"], "bernoulli")
    for step in (0, 20, 50, 100, 1000):
        c = ref_capacity(step, 5.0, ANNEAL)
        for kl in (0.0, 1.0, 2.5, 5.0, 7.0):
            loss, logs = model_loss(model, t, step, "bernoulli", kl=kl)
            np.testing.assert_allclose(loss, recon + 10.0 * abs(kl - c), **TOL)
            assert float(logs["capacity"]) == pytest.approx(c)
