"""Weak supervision from pairs: Ada-GVAE and Ada-ML-VAE (Locatello, Poole, Rätsch, Schölkopf,
Bachem, Tschannen 2020, "Weakly-Supervised Disentanglement Without Compromises", ICML), and
the group VAE told how many factors changed.

Each training step draws ``batch_size`` pairs of factor vectors that differ in k factors
(:class:`~dbench.contracts.PairSampler`; ``k="random"``, the paper's "k = rnd", draws k per
pair uniformly from 1..d-1) and renders both images of each pair: gathered by grid index from
the training loop's compact table on grids without nuisance (as :mod:`dbench.models.dcign`
does), else ``Sim(v, w)`` with a nuisance drawn for each image. Both images are encoded and,
per pair and latent dimension i:

1. ``delta_i = KL(q(z_i|x1) || q(z_i|x2))``;
2. the shared dimensions: ``delta_i < tau`` with ``tau = (max delta + min delta) / 2``
   (``adagvae``, ``adamlvae``), or all but the k of largest ``delta`` when k is known
   (``groupvae``: k read off the pair's factors);
3. each shared dimension of both posteriors is replaced by the pair's aggregate: the mean of
   the means and of the variances (GVAE, Hosoya 2019) or the normalised product of the two
   Gaussians (ML-VAE, Bouchacourt et al. 2018: precisions add, means weighted by precision);
4. the loss (the paper's objective with beta): per pair, the sum over its two images of
   ``recon(x_j) + beta * KL(q~(z|x_j) || N(0, I))``, with z sampled from the aggregated
   posterior q~, averaged over the pairs. ``recon`` and ``kl`` are logged per image, so they
   read as the VAE family's do (the loss is twice ``recon + beta * kl``).

Defaults are the paper's: beta = 1, k random. ``encode`` is the VAE's: the mean of q(z|x) of
single images, nothing aggregated, so the models are scored like every other.

Where this differs from disentanglement_lib's code (methods/weak): there the pair's loss is
the *mean* over its two images (half the paper's sum: with Adam, the same updates but for
its epsilon); the distance lacks the 1/2 of the KL (the threshold is the same); with k random
each pair changes either one factor or k (a coin flip) and redraws them uniformly, so a
"changed" factor may keep its value; and its ML-VAE aggregate has twice the product's
variance (the mean of the precisions). dbench follows the paper: exactly k factors change,
and the product of experts is the product.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dbench.checks import NONNEGATIVE_NUMBER, POSITIVE_INT, AnyOf, Options
from dbench.contracts import PairSampler, Simulator
from dbench.errors import UserError
from dbench.models import objectives as obj
from dbench.models.training import Step
from dbench.models.vae import COMMON, VAE

RANDOM_K = "random"


#: ``k``: a positive int (that many factors change in every pair) or ``"random"``
K = AnyOf((POSITIVE_INT, Options((RANDOM_K,))), f"a positive integer or {RANDOM_K!r}")


def check_pairs(sim: Simulator, k: int | str, model: str) -> None:
    """Refuse, in one line, a dataset that cannot draw pairs, or a k it cannot honour."""
    name = getattr(sim, "name", type(sim).__name__)
    if not isinstance(sim, PairSampler) or getattr(sim, "labelled", False):
        raise UserError(
            f"{model} trains from pairs of observations that differ in k factors; dataset "
            f"{name!r} cannot draw them (it needs sample_pairs, as every factor grid such as "
            "dsprites, shapes3d, mpi3d_toy has)"
        )
    varying = sum(int(s) > 1 for s in sim.factor_sizes)
    if varying == 0:
        raise UserError(f"{model} needs a factor with more than one value; {name!r} has none")
    if k != RANDOM_K and int(k) > varying:
        raise UserError(
            f"{model}: k={k} but {name!r} has {varying} factor(s) that vary; use k <= {varying}"
        )


class AdaGVAE(VAE):
    """Ada-GVAE (Locatello et al. 2020), trained from pairs; see the module docstring.

    ``beta`` weights the KL term of each image's aggregated posterior (the paper's default 1).
    ``k`` is how many factors change in each pair: an int, or ``"random"`` (the default, the
    paper's k = rnd), drawn per pair from 1..d-1 for d factors that vary. The batch size
    counts pairs: a step encodes twice as many images."""

    #: how a pair's shared latents are merged: "gvae" (averaging) or "mlvae" (product)
    aggregation = "gvae"
    #: how the shared latents are chosen: "adaptive" (threshold) or "known_k"
    selection = "adaptive"
    constraints = {"beta": NONNEGATIVE_NUMBER, "k": K, **COMMON}

    def __init__(
        self,
        beta: float = 1.0,
        k: int | str = RANDOM_K,
        latent_dim: int = 10,
        arch: str = "burgess",
        decoder: str = "auto",
        lr: float = 5e-4,
        compile: bool | str = "auto",
    ):
        self.set_checked(beta=beta, k=k)
        self._common(latent_dim, arch, decoder, lr, compile)

    def setup(self, sim: Simulator, device: torch.device, gen: torch.Generator) -> None:
        check_pairs(sim, self.k, self._name())
        self._sim = sim
        super().setup(sim, device, gen)

    # -- the pairs -----------------------------------------------------------------------
    def pairs(self, step: Step) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
        """(x1, x2, v1, v2): ``step.batch_size`` pairs of images and their factors. Every draw
        comes from ``step.gen`` (checkpointed), so a resumed run sees the same pairs."""
        gen = step.gen
        seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device).item())
        rng = np.random.default_rng(seed)
        n = step.batch_size
        v1, v2 = self._sim.sample_pairs(n, None if self.k == RANDOM_K else int(self.k), rng)
        v = np.concatenate([v1, v2])
        w = self._sim.sample_nuisance(2 * n, rng)
        table = step.table  # a grid without nuisance: the loop's table, by grid index, holds
        if w is None and table is not None:  # the images ``sim`` renders
            rows = torch.as_tensor(self._sim.index_of(v), device=table.data.device)
            x = table.decode(table.data.index_select(0, rows))
        else:
            x = torch.as_tensor(self._sim.sim(v, w))
        x = x.to(self.device_).float()
        fmt = torch.channels_last if x.dim() == 4 else torch.contiguous_format
        x = x.contiguous(memory_format=fmt)
        return x[:n], x[n:], v1, v2

    # -- the objective ---------------------------------------------------------------------
    def shared_mask(self, delta: torch.Tensor, v1: np.ndarray, v2: np.ndarray) -> torch.Tensor:
        if self.selection == "known_k":
            k = torch.as_tensor((np.asarray(v1) != np.asarray(v2)).sum(1), device=delta.device)
            return obj.known_k_shared(delta, k)
        return obj.adaptive_shared(delta)

    def aggregate(
        self, mu1: torch.Tensor, lv1: torch.Tensor, mu2: torch.Tensor, lv2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.aggregation == "mlvae":
            return obj.product_of_experts(mu1, lv1, mu2, lv2)
        return obj.gvae_average(mu1, lv1, mu2, lv2)

    def pair_posteriors(
        self, h: torch.Tensor, v1: np.ndarray, v2: np.ndarray
    ) -> dict[str, torch.Tensor]:
        """From the encoder's output for [x1; x2] (2n, 2D): the aggregated posteriors of both
        images (2n, D each), in the same order, and the pair's shared mask and distances."""
        d, n = self.latent_dim, h.shape[0] // 2
        mu, logvar = h[:, :d], h[:, d:]
        mu1, mu2, lv1, lv2 = mu[:n], mu[n:], logvar[:n], logvar[n:]
        delta = obj.kl_between(mu1, lv1, mu2, lv2)
        shared = self.shared_mask(delta, v1, v2)
        agg_mu, agg_lv = self.aggregate(mu1, lv1, mu2, lv2)
        m1, l1 = obj.share(mu1, lv1, agg_mu, agg_lv, shared)
        m2, l2 = obj.share(mu2, lv2, agg_mu, agg_lv, shared)
        return {
            "mu": torch.cat([m1, m2]),
            "logvar": torch.cat([l1, l2]),
            "shared": shared,
            "delta": delta,
        }

    def loss(self, step: Step, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per pair, recon + beta * KL summed over both images; averaged over the pairs."""
        return parts["recon_pair"] + self.beta * parts["kl_pair"]

    def train_step(self, step: Step) -> dict[str, torch.Tensor]:
        self.encoder_.train(), self.decoder_.train()
        x1, x2, v1, v2 = self.pairs(step)
        x = torch.cat([x1, x2])
        n = len(x1)
        with step.autocast():
            h = self._enc(x).float()
        parts = self.pair_posteriors(h, v1, v2)
        z = obj.reparameterise(parts["mu"], parts["logvar"], step.gen)
        with step.autocast():
            out = self._dec(z)
        recon_each = obj.reconstruction(out, x, self.decoder_kind_)  # (2n,)
        kl_each = obj.kl_per_dim(parts["mu"], parts["logvar"])  # (2n, D)
        parts.update(
            z=z,
            recon_each=recon_each,
            kl_each=kl_each,
            recon_pair=recon_each.sum() / n,
            kl_pair=kl_each.sum() / n,
        )
        loss = self.loss(step, parts)
        step.optimise(loss, self._optimizers["vae"])
        logs = {
            "loss": loss,
            "recon": recon_each.mean(),
            "kl": kl_each.sum(1).mean(),
            "kl_per_dim": kl_each.mean(0),
            "shared_latents": parts["shared"].float().sum(1).mean(),
        }
        return {k: v.detach() for k, v in logs.items()}

    def _extra_info(self) -> dict[str, Any]:
        return {"k": self.k, "aggregation": self.aggregation, "selection": self.selection}


class AdaMLVAE(AdaGVAE):
    """Ada-ML-VAE (Locatello et al. 2020): Ada-GVAE's pairs and adaptive threshold, the shared
    latents merged by the ML-VAE's product of experts (Bouchacourt et al. 2018)."""

    aggregation = "mlvae"


class GroupVAE(AdaGVAE):
    """The group VAE with the number of changed factors known (the non-adaptive variant
    Locatello et al. 2020 compare with): per pair, the k latents of largest KL between the two
    posteriors are its own, all others averaged (GVAE), k read off the pair's factors. A
    baseline for the adaptive threshold: it is told what Ada-GVAE must infer."""

    selection = "known_k"
