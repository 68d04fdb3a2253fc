"""The VAE family's variants: each one the VAE of :mod:`dbench.models.vae` with its own loss.

beta-VAE (Higgins et al. 2017), the untrained VAE of Table 1, AnnealedVAE (Burgess et al.
2018), beta-TCVAE (Chen et al. 2018), DIP-VAE (Kumar et al. 2018) and FactorVAE (Kim & Mnih
2018). Hyperparameter defaults are the papers' dSprites values (see each class).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dbench.checks import (
    NONNEGATIVE_NUMBER,
    POSITIVE_INT,
    POSITIVE_NUMBER,
    Interval,
    Maybe,
    Options,
)
from dbench.contracts import Budget, FitContext, Simulator
from dbench.models import objectives as obj
from dbench.models.nets import Discriminator, init_weights
from dbench.models.training import Step
from dbench.models.vae import COMMON, VAE


class BetaVAE(VAE):
    """beta-VAE (Higgins et al. 2017, Eq. 4) with beta = 4 by default (the paper's dSprites
    setting). ``beta_norm = beta * M / N`` (M latents, N pixels) is recorded too (Sec. 4)."""

    def __init__(
        self,
        beta: float = 4.0,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 5e-4,
        compile: bool | str = "auto",
    ):
        super().__init__(beta, latent_dim, arch, decoder, lr, compile)


class UntrainedVAE(VAE):
    """The "VAE untrained" row of Higgins et al. 2017, Table 1: the VAE's encoder at its
    random initialisation (zero training steps unless a budget asks for more)."""

    default_budget = Budget(steps=0, batch_size=64)

    presets = {"default": Budget(steps=0, batch_size=64)}


class AnnealedVAE(VAE):
    """Capacity-annealed beta-VAE (Burgess et al. 2018, "Understanding disentangling in
    beta-VAE", Eq. 8): ``recon + gamma * |KL - C|`` with C rising linearly from 0 to ``c_max``
    nats over ``anneal_steps`` steps. Defaults are the paper's dSprites values (C_max = 25,
    gamma = 1000); ``anneal_steps=None`` anneals over ``anneal_fraction`` of the training
    budget (default 1: all of it). Locatello et al. 2019 anneal over 100,000 of 300,000 steps
    (disentanglement_lib's ``iteration_threshold``): ``anneal_fraction=1/3`` keeps that shape
    at any budget, which a slice of their study at fewer steps needs."""

    constraints = {
        "c_max": NONNEGATIVE_NUMBER,
        "gamma": NONNEGATIVE_NUMBER,
        "anneal_steps": Maybe(POSITIVE_INT),  # None: anneal over anneal_fraction of the budget
        "anneal_fraction": Interval(float, 0, 1, closed="right"),
        **COMMON,
    }

    def __init__(
        self,
        c_max: float = 25.0,
        gamma: float = 1000.0,
        anneal_steps: int | None = None,
        anneal_fraction: float = 1.0,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 5e-4,
        compile: bool | str = "auto",
    ):
        self.set_checked(
            c_max=c_max,
            gamma=gamma,
            anneal_steps=anneal_steps,
            anneal_fraction=anneal_fraction,
        )
        self._common(latent_dim, arch, decoder, lr, compile)

    def kl_weight(self) -> float | None:
        return None  # the KL is pulled towards C, not weighted

    def fit(self, sim: Simulator, rng: np.random.Generator, ctx: FitContext) -> VAE:
        budget = ctx.budget.resolved(self.default_budget)
        whole = budget.steps or 0
        self.anneal_steps_ = self.anneal_steps or max(1, round(whole * self.anneal_fraction))
        return super().fit(sim, rng, ctx)

    def loss(self, step: Step, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        c = obj.capacity(step.index, self.c_max, self.anneal_steps_)
        parts["logs"] = {"capacity": torch.tensor(c)}
        return parts["recon"] + self.gamma * (parts["kl"] - c).abs()

    def _extra_info(self) -> dict[str, Any]:
        return {"anneal_steps": self.anneal_steps_, "c_max": self.c_max, "gamma": self.gamma}


class BetaTCVAE(VAE):
    """beta-TCVAE (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs", Eq. 4 with
    alpha = gamma = 1): ``recon + KL + (beta - 1) * TC``, the total correlation TC estimated by
    minibatch-weighted sampling (:func:`~dbench.models.objectives.total_correlation_mws`)."""

    def __init__(
        self,
        beta: float = 6.0,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 5e-4,
        compile: bool | str = "auto",
    ):
        super().__init__(beta, latent_dim, arch, decoder, lr, compile)

    def kl_weight(self) -> float | None:
        return 1.0

    def loss(self, step: Step, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        tc = obj.total_correlation_mws(parts["z"], parts["mu"], parts["logvar"], self.dataset_size_)
        parts["logs"] = {"tc": tc}
        return parts["recon"] + parts["kl"] + (self.beta - 1.0) * tc

    def _extra_info(self) -> dict[str, Any]:
        return {"tc_weight": self.beta}


class DIPVAE(VAE):
    """DIP-VAE-I / -II (Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts
    from Unlabeled Observations"): ``recon + KL + lambda_od * sum_{i!=j} C_ij^2 + lambda_d *
    sum_i (C_ii - 1)^2`` (:func:`~dbench.models.objectives.dip_regulariser`). ``lambda_d=None``
    follows the paper: 10 * lambda_od for DIP-VAE-I, lambda_od for DIP-VAE-II."""

    constraints = {
        "kind": Options(("i", "ii")),
        "lambda_od": NONNEGATIVE_NUMBER,
        "lambda_d": Maybe(NONNEGATIVE_NUMBER),
        **COMMON,
    }

    def __init__(
        self,
        kind: str = "i",
        lambda_od: float = 10.0,
        lambda_d: float | None = None,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 5e-4,
        compile: bool | str = "auto",
    ):
        self.set_checked(kind=kind, lambda_od=lambda_od, lambda_d=lambda_d)
        self._common(latent_dim, arch, decoder, lr, compile)

    def _lambda_d(self) -> float:
        if self.lambda_d is not None:
            return self.lambda_d
        return 10.0 * self.lambda_od if self.kind == "i" else self.lambda_od

    def kl_weight(self) -> float | None:
        return 1.0

    def loss(self, step: Step, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        dip = obj.dip_regulariser(
            parts["mu"], parts["logvar"], self.kind, self.lambda_od, self._lambda_d()
        )
        parts["logs"] = {"dip": dip}
        return parts["recon"] + parts["kl"] + dip

    def _extra_info(self) -> dict[str, Any]:
        return {"kind": self.kind, "lambda_od": self.lambda_od, "lambda_d": self._lambda_d()}


class FactorVAE(VAE):
    """FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising", Algorithm 1).

    VAE loss ``recon + KL + gamma * TC``, with TC(z) estimated by the density-ratio trick: a
    discriminator D tells samples of q(z) from samples of prod_d q(z_d) (latents permuted per
    dimension across a second batch), and ``TC ~ E[log D(z) - log(1 - D(z))]`` = the mean
    logit difference. D is trained with Adam (lr ``disc_lr``, betas 0.5/0.9 as in the paper).
    """

    constraints = {"gamma": NONNEGATIVE_NUMBER, "disc_lr": POSITIVE_NUMBER, **COMMON}

    def __init__(
        self,
        gamma: float = 35.0,
        disc_lr: float = 1e-4,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 1e-4,
        compile: bool | str = "auto",
    ):
        self.set_checked(gamma=gamma, disc_lr=disc_lr)
        self._common(latent_dim, arch, decoder, lr, compile)

    def kl_weight(self) -> float | None:
        return 1.0

    def setup(self, sim: Simulator, device: torch.device, gen: torch.Generator) -> None:
        super().setup(sim, device, gen)
        self._extra_modules(device, gen)
        self._optimizers["disc"] = self._adam(
            self.discriminator_, lr=self.disc_lr, betas=(0.5, 0.9)
        )

    def _extra_modules(self, device: Any, gen: torch.Generator | None) -> None:
        with torch.random.fork_rng(devices=[]):  # leave the global RNG untouched
            disc = Discriminator(self.latent_dim)
        if gen is not None:
            init_weights(disc, gen)
        self.discriminator_ = disc.to(device)

    def state_modules(self) -> dict[str, nn.Module]:
        return {**super().state_modules(), "discriminator": self.discriminator_}

    def loss(self, step: Step, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.discriminator_(parts["z"])
        tc = (logits[:, 0] - logits[:, 1]).mean()
        parts["logs"] = {"tc": tc}
        self._z_real = parts["z"].detach()
        return parts["recon"] + parts["kl"] + self.gamma * tc

    def train_step(self, step: Step) -> dict[str, torch.Tensor]:
        logs = super().train_step(step)
        # Discriminator update on a second batch (Algorithm 1): class 0 = q(z), 1 = permuted.
        with torch.no_grad(), step.autocast():
            h = self._enc(step.batch()).float()
            z2 = obj.reparameterise(h[:, : self.latent_dim], h[:, self.latent_dim :], step.gen)
        z_perm = obj.permute_dims(z2, step.gen)
        z_all = torch.cat([self._z_real, z_perm])
        labels = (
            torch.cat([torch.zeros(len(self._z_real)), torch.ones(len(z_perm))])
            .long()
            .to(z_all.device)
        )
        d_loss = nn.functional.cross_entropy(self.discriminator_(z_all), labels)
        step.optimise(d_loss, self._optimizers["disc"])
        self._z_real = None
        return {**logs, "disc_loss": d_loss.detach()}

    def _extra_info(self) -> dict[str, Any]:
        return {"gamma": self.gamma}
