"""InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by Information
Maximizing Generative Adversarial Nets"), trained by the one loop of
:mod:`dbench.models.training` (checkpoints, exact resume, progress, curves, precision).

The generator G sees noise z and a latent code c: ``n_cont`` continuous codes, uniform on
[-1, 1], and optionally one categorical code with ``n_cat`` values (uniform). The objective
is the GAN minimax game minus ``lambda * L_I(G, Q)``, L_I the variational lower bound of the
mutual information I(c; G(z, c)):

    L_I = H(c) - E[ -log Q(c | G(z, c)) ],

so maximising L_I minimises the code's negative log-likelihood under Q. Q is a factored
Gaussian with unit standard deviation for the continuous codes (its means are learned;
``-log Q = 0.5 (c - mu)^2 + 0.5 log 2 pi`` per code, the constant dropped) and a softmax for
the categorical code (cross-entropy). Weights: ``lambda_cat = 1``, the paper's value for
discrete codes, and ``lambda_cont = 1``: the paper lowers lambda for continuous codes only to
keep that term on the GAN loss's scale, and with Q's deviation fixed at 1 it is already
there (at most 2 per code while the means stay inside the codes' range).

One step (the information term on both players, as Q shares D's body):

1. D and Q: ``BCE(D(x), 1) + BCE(D(G(z, c)), 0) + lambda * NLL_Q(c)`` on the detached fakes;
2. G: the non-saturating ``BCE(D(G(z, c)), 1) + lambda * NLL_Q(c)`` through the updated D.

Adam with beta1 = 0.5 (Radford et al. 2016); learning rates 2e-4 for D and 1e-3 for G
(Chen et al., Appendix C). Noise: ``noise_dim = 62`` uniform on [-1, 1] (their MNIST size).
The networks are in :mod:`dbench.models.infogan_nets`.

The representation (``encode``) is Q's mean of the continuous codes for the real image, in
eval mode (batch-norm running statistics): deterministic. ``decode(c)`` is G with the noise at
its mean (0) and the first category, so latent traversals work. There is no reconstruction
and no KL: the record's ``recon_loss``, ``kl_total`` and ``kl_per_dim`` are None.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dbench.checks import (
    NONNEGATIVE_INT,
    NONNEGATIVE_NUMBER,
    POSITIVE_INT,
    POSITIVE_NUMBER,
    AnyOf,
    Interval,
)
from dbench.contracts import Budget, FitContext, Observations, Simulator
from dbench.errors import UserError
from dbench.models.base import TorchModel
from dbench.models.infogan_nets import Critic, Generator
from dbench.models.nets import init_weights
from dbench.models.precision import autocast
from dbench.models.training import LoopSettings, Step, adam, fit

#: sized for about 5 minutes of training on dSprites on a 2-core CPU: one step (a generator
#: pass, three critic passes and two backward passes) measured 2.4-3.5x a beta-VAE step,
#: whose 5,000-step default trains in about 11 minutes there (0.13 s/step)
DEFAULT_BUDGET = Budget(steps=600, batch_size=64)
PRESETS = {"default": DEFAULT_BUDGET}
BETAS = (0.5, 0.999)
_ENCODE_CHUNK = 1024


# -- the loss terms (plain tensor functions) ---------------------------------------------------
def d_loss(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """Discriminator loss: ``mean BCE(D(x), 1) + mean BCE(D(G(z, c)), 0)`` (Goodfellow et al.
    2014), from logits."""
    real = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
    fake = F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
    return real + fake


def g_loss(fake_logit: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``mean -log D(G(z, c))`` (Goodfellow et al. 2014)."""
    return F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))


def info_cont(mu: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``-log Q(c | x)`` of unit-variance Gaussian codes without its constant:
    ``mean over the batch of sum_j 0.5 (c_j - mu_j)^2``."""
    return 0.5 * (c - mu).square().sum(1).mean()


def info_cat(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``-log Q(c | x)`` of the categorical code: the mean cross-entropy."""
    return F.cross_entropy(logits, index)


class InfoGAN(TorchModel):
    """InfoGAN with continuous (and optionally categorical) codes; see the module docstring.

    ``n_cont`` continuous codes (5 for dSprites' five factors), ``n_cat`` values of the
    categorical code (0: none), ``noise_dim`` noise variables, ``lambda_cont`` /
    ``lambda_cat`` the information weights, ``lr_d`` / ``lr_g`` the Adam learning rates and
    ``channels`` the conv width (:mod:`dbench.models.infogan_nets`).
    """

    default_budget = DEFAULT_BUDGET
    presets = PRESETS
    #: nothing to evaluate after training (no reconstruction, no KL): one image, not 2048
    loop = LoopSettings(eval_sample=1)
    state_format = "dbench-infogan/1"
    constraints = {
        "n_cont": POSITIVE_INT,
        # one category would be a constant code
        "n_cat": AnyOf(
            (Interval(int, 0, 0), Interval(int, 2)), "0 (no categorical code) or an integer >= 2"
        ),
        "noise_dim": NONNEGATIVE_INT,
        "lambda_cont": NONNEGATIVE_NUMBER,
        "lambda_cat": NONNEGATIVE_NUMBER,
        "lr_d": POSITIVE_NUMBER,
        "lr_g": POSITIVE_NUMBER,
        "channels": POSITIVE_INT,
    }

    def __init__(
        self,
        n_cont: int = 5,
        n_cat: int = 0,
        noise_dim: int = 62,
        lambda_cont: float = 1.0,
        lambda_cat: float = 1.0,
        lr_d: float = 2e-4,
        lr_g: float = 1e-3,
        channels: int = 32,
    ):
        self.set_checked(
            n_cont=n_cont,
            n_cat=n_cat,
            noise_dim=noise_dim,
            lambda_cont=lambda_cont,
            lambda_cat=lambda_cat,
            lr_d=lr_d,
            lr_g=lr_g,
            channels=channels,
        )

    # -- nets -----------------------------------------------------------------------------------
    def _build(self, device: torch.device | str, gen: torch.Generator | None) -> None:
        n_in = self.noise_dim + self.n_cont + self.n_cat
        with torch.random.fork_rng(devices=[]):  # module constructors draw from the global RNG
            generator = Generator(self.obs_shape_, n_in, self.channels)
            critic = Critic(self.obs_shape_, self.n_cont + self.n_cat, self.channels)
        if gen is not None:
            init_weights(generator, gen), init_weights(critic, gen)
        # channels-last: oneDNN's fast (AMX/bf16) convolutions want it for modules and inputs
        self.generator_ = generator.to(device, memory_format=torch.channels_last)
        self.critic_ = critic.to(device, memory_format=torch.channels_last)
        self.device_ = str(device)

    def latent(
        self, noise: torch.Tensor, codes: torch.Tensor, category: torch.Tensor | None
    ) -> torch.Tensor:
        """G's input: ``[noise, continuous codes, one-hot category]``."""
        parts = [noise, codes]
        if self.n_cat:
            parts.append(F.one_hot(category, self.n_cat).to(codes.dtype))
        return torch.cat(parts, dim=1)

    def sample_codes(
        self, m: int, gen: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(noise, continuous codes, category) for ``m`` fakes, all drawn from ``gen``."""
        noise = torch.rand((m, self.noise_dim), generator=gen, device=device) * 2 - 1
        codes = torch.rand((m, self.n_cont), generator=gen, device=device) * 2 - 1
        category = None
        if self.n_cat:
            category = torch.randint(self.n_cat, (m,), generator=gen, device=device)
        return noise, codes, category

    def information(
        self, q: torch.Tensor, codes: torch.Tensor, category: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """The weighted information loss ``lambda_cont * NLL_cont + lambda_cat * NLL_cat``."""
        q = q.float()
        parts = {"info_cont": info_cont(q[:, : self.n_cont], codes)}
        total = self.lambda_cont * parts["info_cont"]
        if self.n_cat:
            parts["info_cat"] = info_cat(q[:, self.n_cont :], category)
            total = total + self.lambda_cat * parts["info_cat"]
        return {**parts, "info": total}

    # -- the Trainable protocol ---------------------------------------------------------------
    def setup(self, sim: Simulator, device: torch.device, gen: torch.Generator) -> None:
        self.obs_shape_ = tuple(int(s) for s in sim.observation_shape)
        self._build(device, gen)
        self._optimizers = {
            "discriminator": adam(self.critic_.parameters(), lr=self.lr_d, betas=BETAS),
            "generator": adam(self.generator_.parameters(), lr=self.lr_g, betas=BETAS),
        }

    def state_modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator_, "critic": self.critic_}

    def state_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def train_step(self, step: Step) -> dict[str, torch.Tensor]:
        self.generator_.train(), self.critic_.train()
        x = step.batch()
        noise, codes, category = self.sample_codes(len(x), step.gen, x.device)
        with step.autocast():
            fake = torch.sigmoid(self.generator_(self.latent(noise, codes, category)))
            real_logit, _ = self.critic_(x)
            fake_logit, q = self.critic_(fake.detach())
        loss_d = d_loss(real_logit.float(), fake_logit.float())
        info_d = self.information(q, codes, category)
        step.optimise(loss_d + info_d["info"], self._optimizers["discriminator"])
        with step.autocast():
            fake_logit, q = self.critic_(fake)
        loss_g = g_loss(fake_logit.float())
        info_g = self.information(q, codes, category)
        step.optimise(loss_g + info_g["info"], self._optimizers["generator"])
        logs = {
            "loss": loss_d + loss_g + info_g["info"],
            "d_loss": loss_d,
            "g_loss": loss_g,
            **info_g,
            # the loop's progress bar shows a "kl"; a GAN has none
            "kl": torch.zeros((), device=x.device),
        }
        return {k: v.detach() for k, v in logs.items()}

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """No reconstruction and no KL: empty stand-ins (``fit`` records them as None)."""
        return {"recon": torch.zeros(len(x)), "kl": torch.zeros((len(x), 0))}

    # -- the Model protocol --------------------------------------------------------------------
    def fit(self, sim: Simulator, rng: np.random.Generator, ctx: FitContext) -> InfoGAN:
        info = fit(
            self,
            sim,
            rng,
            ctx,
            name="infogan",
            default_budget=self.default_budget,
            params=self.get_params(),
        )
        not_applicable = ("recon_loss", "kl_total", "kl_per_dim", "eval_sample")
        self.fit_info_ = {
            **info,
            **dict.fromkeys(not_applicable),
            "representation": "Q's mean of the continuous codes",
            "arch": f"infogan-dcgan-{self.channels}",
        }
        return self

    def _fitted(self) -> None:
        if not hasattr(self, "critic_"):
            raise UserError("infogan must be fitted or loaded before encoding or decoding")

    @torch.inference_mode()
    def encode(self, obs: Observations) -> torch.Tensor:
        self._fitted()
        self.critic_.eval()
        x = torch.as_tensor(obs.images)
        device = torch.device(self.device_)
        out = []
        precision = getattr(self, "fit_info_", {}).get("precision")  # encode as it trained
        for start in range(0, len(x), _ENCODE_CHUNK):
            xb = x[start : start + _ENCODE_CHUNK].to(device, torch.float32)
            if xb.dim() == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                out.append(self.critic_.q(xb)[:, : self.n_cont].float().cpu())
        return torch.cat(out) if out else torch.empty(0, self.n_cont)

    @torch.inference_mode()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (n, C, H, W) in [0, 1]: G at continuous codes ``z``, noise 0, category 0."""
        self._fitted()
        self.generator_.eval()
        device = torch.device(self.device_)
        codes = torch.as_tensor(z, dtype=torch.float32, device=device).reshape(-1, self.n_cont)
        noise = torch.zeros((len(codes), self.noise_dim), device=device)
        category = torch.zeros(len(codes), dtype=torch.long, device=device)
        latent = self.latent(noise, codes, category if self.n_cat else None)
        return torch.sigmoid(self.generator_(latent).float()).cpu()

    # -- persistence (TorchModel saves state_modules' weights) --------------------------------
    def rebuild_info(self) -> dict[str, Any]:
        return {"obs_shape": list(self.obs_shape_)}

    def rebuild(self, saved: dict[str, Any], path: Path) -> None:
        self.obs_shape_ = tuple(saved["obs_shape"])
        self._build("cpu", None)
